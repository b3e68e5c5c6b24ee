//! Chat channels (Telegram, Discord): the channel-independent rules of
//! `channels.md`. So far outbound chunking ([`chunk`]), the DM gate and
//! session keys ([`route`]); the adapters are not built yet
//! (`channels.status` reports configured channels as not available).

pub mod chunk;
pub mod route;
