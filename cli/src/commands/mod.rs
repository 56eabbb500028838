pub mod apdu;
pub mod bureau;
pub mod card;
pub mod conform;
pub mod readers;
pub mod serve;
