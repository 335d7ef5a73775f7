//! The byte buffer of one list node: its packed entries, with room kept at the end a list
//! grows from, so pushes and pops at a list's ends move no bytes.
//!
//! Listpack (and this node before) keeps a node's bytes exactly sized: every LPUSH moves the
//! whole node (up to 8 KB) one entry to the right, and every push reallocates. Here a node
//! that outgrows its allocation at one end gets half again its size, all of it on that end;
//! a push into that room writes only the new entry, a pop at an end only moves the bound.
//! Small nodes (up to [`EXACT_UP_TO`] bytes) and edits inside a node stay exactly sized, so
//! short lists take the same memory as before, and a node whose room grew to more than its
//! entries after pops is trimmed back to its exact size.

use std::ops::Deref;

/// Nodes up to this many bytes are kept exactly sized (moving them costs little).
const EXACT_UP_TO: usize = 256;

/// A node's packed entries: `mem[head .. mem.len() - room]`.
#[derive(Clone, Default)]
pub(super) struct NodeBuf {
    mem: Box<[u8]>,
    /// Unused bytes before the entries.
    head: u16,
    /// Unused bytes after the entries.
    room: u16,
}

impl Deref for NodeBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        &self.mem[self.head as usize..self.mem.len() - self.room as usize]
    }
}

impl From<&[u8]> for NodeBuf {
    fn from(bytes: &[u8]) -> NodeBuf {
        NodeBuf::exact(bytes.into())
    }
}

impl NodeBuf {
    /// A buffer holding exactly `mem`.
    pub(super) fn exact(mem: Box<[u8]>) -> NodeBuf {
        NodeBuf { mem, head: 0, room: 0 }
    }

    /// Bytes allocated (entries and room).
    pub(super) fn capacity(&self) -> usize {
        self.mem.len()
    }

    /// Replaces bytes `start..end` with `add` bytes written by `write` (which gets exactly
    /// `add` bytes); `limit` is the most bytes a node of this list holds (its room never grows
    /// the allocation past it).
    pub(super) fn splice(&mut self, start: usize, end: usize, add: usize, limit: usize, write: impl FnOnce(&mut [u8])) {
        let len = self.len();
        let del = end - start;
        let new_len = len - del + add;
        let (head, room) = (self.head as usize, self.room as usize);
        const MAX: usize = u16::MAX as usize;
        if start == 0 && add <= del + head && del + head - add <= MAX {
            // At the front, within the room there.
            let at = head + del - add;
            write(&mut self.mem[at..at + add]);
            self.head = at as u16;
        } else if end == len && add <= del + room && del + room - add <= MAX {
            // At the back, within the room there.
            let at = head + start;
            write(&mut self.mem[at..at + add]);
            self.room = (room + del - add) as u16;
        } else {
            // Inside the node, or out of room: a new allocation, with room at the end that
            // grew when the node is big enough for moving it to matter.
            let grown = new_len + new_len / 2;
            let spare = if new_len > EXACT_UP_TO && grown <= MAX && (start == 0 || end == len) {
                grown.min(limit.max(new_len)) - new_len
            } else {
                0
            };
            let at_front = start == 0 && spare > 0;
            let old = &self.mem[head..head + len];
            let mut v = Vec::with_capacity(new_len + spare);
            if at_front {
                v.resize(spare, 0);
            }
            v.extend_from_slice(&old[..start]);
            let w = v.len();
            v.resize(w + add, 0);
            write(&mut v[w..w + add]);
            v.extend_from_slice(&old[end..]);
            if !at_front {
                v.resize(new_len + spare, 0);
            }
            self.mem = v.into_boxed_slice();
            (self.head, self.room) = if at_front { (spare as u16, 0) } else { (0, spare as u16) };
            return;
        }
        // Pops leave room behind: give it back once it is more than the entries.
        let unused = self.head as usize + self.room as usize;
        if unused > new_len && unused > 64 {
            *self = NodeBuf::from(&self[..]);
        }
    }
}
