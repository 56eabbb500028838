//! Control of a running `tessera serve` from outside: the protocol (typed JSON-line requests and
//! answers), the listener, and what the requests do to the served cards. `tessera ctl` is its client.

pub mod protocol;
pub mod served;
pub mod server;
