//! The protected data: a small notes store, keyed by whose notes they are.
//!
//! **In memory only: every note is lost when the process stops.** Each owner
//! keeps at most [`MAX_NOTES_PER_OWNER`] notes and [`MAX_BYTES_PER_OWNER`]
//! bytes of text; adding one more drops the oldest. A note is at most
//! [`MAX_NOTE_BYTES`]. Reading is by pages of at most [`MAX_PAGE`] notes, so
//! the work of one request is bounded however much an owner stored. Owners
//! only come into being through auth tokens from the trusted auth server, so
//! their number is bounded by what that server grants.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// Notes kept per owner.
pub const MAX_NOTES_PER_OWNER: usize = 100;
/// Bytes of text kept per owner.
pub const MAX_BYTES_PER_OWNER: usize = 256 * 1024;
/// The longest note, in bytes.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Notes in a page when the request names no `limit`.
pub const DEFAULT_PAGE: usize = 20;
/// The most notes in one page.
pub const MAX_PAGE: usize = 100;

/// Whose notes: the user (`sub` of the auth token) or, for an autonomous
/// agent, the agent itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Owner {
    /// The auth token's `sub` (E§7.4).
    User(String),
    /// The auth token's `agent`, when no user is involved (E§7.6).
    Agent(String),
}

/// One note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Increasing across the store.
    pub id: u64,
    /// The text.
    pub text: String,
    /// Unix seconds.
    pub created: u64,
}

/// One page of an owner's notes, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// The notes.
    pub notes: Vec<Note>,
    /// The cursor for the next page (`after`), when there are more.
    pub next: Option<u64>,
}

#[derive(Debug, Default)]
struct Shelf {
    notes: VecDeque<Note>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    by_owner: HashMap<Owner, Shelf>,
}

/// The store.
#[derive(Debug, Default)]
pub struct Notes(Mutex<Inner>);

impl Notes {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a note half-written:
        // every update is a single push or pop.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a note for `owner` at `now` and returns it, dropping the oldest
    /// notes as the owner's bounds require. The caller keeps `text` within
    /// [`MAX_NOTE_BYTES`]; a longer one is cut there, on a character
    /// boundary.
    pub fn add(&self, owner: Owner, mut text: String, now: u64) -> Note {
        if text.len() > MAX_NOTE_BYTES {
            let mut end = MAX_NOTE_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let mut inner = self.inner();
        inner.next_id = inner.next_id.saturating_add(1);
        let note = Note {
            id: inner.next_id,
            text,
            created: now,
        };
        let shelf = inner.by_owner.entry(owner).or_default();
        while shelf.notes.len() >= MAX_NOTES_PER_OWNER
            || shelf.bytes + note.text.len() > MAX_BYTES_PER_OWNER
        {
            let Some(oldest) = shelf.notes.pop_front() else {
                break;
            };
            shelf.bytes -= oldest.text.len();
        }
        shelf.bytes += note.text.len();
        shelf.notes.push_back(note.clone());
        note
    }

    /// `owner`'s notes after the note `after` (from the first when `None`),
    /// oldest first, at most `limit` (clamped to 1..=[`MAX_PAGE`]).
    pub fn page(&self, owner: &Owner, after: Option<u64>, limit: usize) -> Page {
        let limit = limit.clamp(1, MAX_PAGE);
        let inner = self.inner();
        let Some(shelf) = inner.by_owner.get(owner) else {
            return Page {
                notes: Vec::new(),
                next: None,
            };
        };
        // Ids increase along the shelf.
        let start = after.map_or(0, |after| shelf.notes.partition_point(|n| n.id <= after));
        let notes: Vec<Note> = shelf
            .notes
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect();
        let more = shelf.notes.len() > start + notes.len();
        Page {
            next: more.then(|| notes.last().map(|n| n.id)).flatten(),
            notes,
        }
    }

    /// `owner`'s notes, oldest first (all of them: at most
    /// [`MAX_NOTES_PER_OWNER`]).
    pub fn list(&self, owner: &Owner) -> Vec<Note> {
        self.page(owner, None, MAX_PAGE).notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_see_only_their_own_notes() {
        let notes = Notes::new();
        let alice = Owner::User("alice".into());
        let agent = Owner::Agent("https://agent.example".into());
        notes.add(alice.clone(), "one".into(), 1);
        notes.add(agent.clone(), "two".into(), 2);
        let listed: Vec<_> = notes.list(&alice).into_iter().map(|n| n.text).collect();
        assert_eq!(listed, ["one"]);
        assert_eq!(notes.list(&agent).len(), 1);
        assert!(notes.list(&Owner::User("bob".into())).is_empty());
    }

    #[test]
    fn a_full_owner_drops_the_oldest_note() {
        let notes = Notes::new();
        let owner = Owner::User("u".into());
        for i in 0..=MAX_NOTES_PER_OWNER {
            notes.add(owner.clone(), i.to_string(), 0);
        }
        let listed = notes.list(&owner);
        assert_eq!(listed.len(), MAX_NOTES_PER_OWNER);
        assert_eq!(listed.first().map(|n| n.text.as_str()), Some("1"));
    }

    #[test]
    fn an_owner_keeps_a_bounded_number_of_bytes() {
        let notes = Notes::new();
        let owner = Owner::User("u".into());
        let big = "x".repeat(MAX_NOTE_BYTES);
        for _ in 0..10 {
            notes.add(owner.clone(), big.clone(), 0);
        }
        let kept = notes.list(&owner);
        assert_eq!(kept.len(), MAX_BYTES_PER_OWNER / MAX_NOTE_BYTES);
        assert!(kept.iter().map(|n| n.text.len()).sum::<usize>() <= MAX_BYTES_PER_OWNER);
        // The newest are kept.
        assert_eq!(kept.last().map(|n| n.id), Some(10));
        // A note past the bound is cut on a character boundary.
        let long = format!("{}é", "a".repeat(MAX_NOTE_BYTES - 1));
        let note = notes.add(owner, long, 0);
        assert_eq!(note.text.len(), MAX_NOTE_BYTES - 1);
    }

    #[test]
    fn pages_follow_the_cursor_to_the_end() {
        let notes = Notes::new();
        let owner = Owner::User("u".into());
        for i in 0..45 {
            notes.add(owner.clone(), i.to_string(), 0);
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = notes.page(&owner, after, DEFAULT_PAGE);
            assert!(page.notes.len() <= DEFAULT_PAGE);
            seen.extend(page.notes.iter().map(|n| n.text.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = (0..45).map(|i: i32| i.to_string()).collect();
        assert_eq!(seen, expected);
        // Limits are clamped; an unknown cursor past the end is an empty page.
        assert_eq!(notes.page(&owner, None, 0).notes.len(), 1);
        assert_eq!(notes.page(&owner, None, 10_000).notes.len(), 45);
        assert_eq!(
            notes.page(&owner, Some(u64::MAX), 5),
            Page {
                notes: Vec::new(),
                next: None
            }
        );
        assert!(
            notes
                .page(&Owner::User("nobody".into()), None, 5)
                .notes
                .is_empty()
        );
    }
}
