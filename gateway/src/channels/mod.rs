//! Chat channels (Telegram, Discord): the channel-independent rules of
//! `channels.md`. So far only outbound chunking ([`chunk`]); the adapters
//! are not built yet (`channels.status` reports configured channels as not
//! available).

pub mod chunk;
