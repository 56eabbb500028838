//! Instruction bytes of the commands the OS answers itself (ISO 7816-4); applets never see them.

/// SELECT (by DF name, P1 `04`: an applet by full AID or unique prefix).
pub const SELECT: u8 = 0xA4;
/// MANAGE CHANNEL (P1 `00` open, `80` close).
pub const MANAGE_CHANNEL: u8 = 0x70;
/// GET RESPONSE: the next piece of a response announced by `61 xx`.
pub const GET_RESPONSE: u8 = 0xC0;
