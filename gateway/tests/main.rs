//! The gateway's integration tests: the protocol over a real WebSocket
//! against an in-process server bound to 127.0.0.1:0 ([`ws`], [`http`]),
//! nodes and `node.invoke` ([`nodes`]), canvas documents ([`canvas`]), and the `openclaw` binary's
//! start-up guard and exit codes ([`binary`]).

mod agent;
mod binary;
mod canvas;
mod control;
mod http;
mod nodes;
mod support;
mod ws;
