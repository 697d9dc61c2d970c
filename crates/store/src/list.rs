//! The value type behind Redis lists.

use std::collections::VecDeque;

/// A list of byte strings, cheap to push and pop at both ends.
#[derive(Debug, Clone, Default)]
pub struct List {
    items: VecDeque<Box<[u8]>>,
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The elements, head first.
    pub fn items(&self) -> &VecDeque<Box<[u8]>> {
        &self.items
    }

    /// The elements, for commands that change them.
    pub fn items_mut(&mut self) -> &mut VecDeque<Box<[u8]>> {
        &mut self.items
    }

    /// What `OBJECT ENCODING` answers: Redis keeps a list as one listpack while it is small
    /// (`list-max-listpack-size` -2: up to 8 KiB) and as a quicklist beyond.
    pub fn encoding(&self) -> &'static str {
        let bytes: usize = self.items.iter().map(|i| i.len() + 2).sum();
        if self.items.len() <= 128 && bytes <= 8 * 1024 {
            "listpack"
        } else {
            "quicklist"
        }
    }

    /// Bytes used by the elements and their slots.
    pub fn memory_usage(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.items.iter().map(|i| i.len()).sum::<usize>()
    }
}
