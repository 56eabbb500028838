//! Command chaining (ISO 7816-4 §5.1.1.1): a command longer than one APDU is sent as several APDUs with
//! CLA bit `10` set on all but the last. [`CommandChain`] reassembles them, refusing chains over a limit.

use thiserror::Error;

use crate::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChainError {
    #[error("chained command of {0} bytes exceeds the {1}-byte limit")]
    TooLong(usize, usize),
    #[error("a chain was interrupted by a command with a different header")]
    Interrupted,
}

/// What feeding one APDU to a [`CommandChain`] gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Chained {
    /// A link of the chain was stored; the card answers `90 00` and waits for the rest.
    Pending,
    /// The whole command (the last link's Le, the chaining bit cleared).
    Complete(Command),
}

#[derive(Debug)]
pub struct CommandChain {
    limit: usize,
    /// The header (chaining bit cleared) and data gathered so far.
    pending: Option<([u8; 4], Vec<u8>)>,
}

impl CommandChain {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            pending: None,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Drops a half-received chain (on reset, or when another command interrupts it).
    pub fn clear(&mut self) {
        self.pending = None;
    }

    pub fn push(&mut self, command: Command) -> Result<Chained, ChainError> {
        let chained = command.is_chained();
        let mut header = command.header();
        header[0] &= !0x10;
        if let Some((pending_header, _)) = &self.pending {
            if *pending_header != header {
                self.pending = None;
                return Err(ChainError::Interrupted);
            }
        }
        if !chained && self.pending.is_none() {
            return Ok(Chained::Complete(command));
        }
        let (_, data) = self.pending.get_or_insert_with(|| (header, Vec::new()));
        let total = data.len() + command.data.len();
        if total > self.limit {
            self.pending = None;
            return Err(ChainError::TooLong(total, self.limit));
        }
        data.extend_from_slice(&command.data);
        if chained {
            return Ok(Chained::Pending);
        }
        let (header, data) = self.pending.take().unwrap_or_default();
        let mut whole = Command::new(header[0], header[1], header[2], header[3]).with_data(data);
        if let Some(ne) = command.ne() {
            whole = whole
                .with_le(ne)
                .map_err(|_| ChainError::TooLong(total, self.limit))?;
        }
        Ok(Chained::Complete(whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(cla: u8, data: &[u8]) -> Command {
        Command::new(cla, 0xDB, 0x3F, 0xFF).with_data(data.to_vec())
    }

    #[test]
    fn reassembles_links_in_order() {
        let mut chain = CommandChain::new(1000);
        assert_eq!(chain.push(link(0x10, &[1, 2])), Ok(Chained::Pending));
        assert_eq!(chain.push(link(0x10, &[3])), Ok(Chained::Pending));
        let Ok(Chained::Complete(whole)) = chain.push(link(0x00, &[4]).with_le(256).unwrap())
        else {
            panic!("chain did not complete");
        };
        assert_eq!(whole.data, [1, 2, 3, 4]);
        assert_eq!(whole.cla, 0);
        assert_eq!(whole.ne(), Some(256));
        assert!(!chain.is_pending());
    }

    #[test]
    fn unchained_command_passes_through() {
        let mut chain = CommandChain::new(10);
        assert_eq!(
            chain.push(link(0, &[1])),
            Ok(Chained::Complete(link(0, &[1])))
        );
    }

    #[test]
    fn limit_and_interruption_are_errors_that_reset_the_chain() {
        let mut chain = CommandChain::new(3);
        chain.push(link(0x10, &[1, 2])).unwrap();
        assert_eq!(
            chain.push(link(0x10, &[3, 4])),
            Err(ChainError::TooLong(4, 3))
        );
        assert!(!chain.is_pending());
        chain.push(link(0x10, &[1])).unwrap();
        let other = Command::new(0, 0xCB, 0x3F, 0xFF);
        assert_eq!(chain.push(other), Err(ChainError::Interrupted));
    }
}
