pub mod apdu;
pub mod bureau;
pub mod card;
pub mod conform;
pub mod ctl;
pub mod readers;
pub mod replay;
pub mod serve;
