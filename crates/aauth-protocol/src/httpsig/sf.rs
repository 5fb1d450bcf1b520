//! Structured field parsing shared by `Signature-Input`, `Signature` and
//! `Content-Digest` (RFC 8941 dictionaries, through `sfv`).
//!
//! RFC 8941 §4.2.2 says a parser keeps only the last of duplicate dictionary
//! keys, so `sig=(…), sig=(…)` parses as one member. E§10.1.1 needs "exactly
//! one label", so the dictionary is parsed through a visitor that counts every
//! member as it is read, duplicates included.

use std::convert::Infallible;

use sfv::visitor::{DictionaryVisitor, EntryVisitor};
use sfv::{Dictionary, KeyRef, Parser, Version};

/// A dictionary and the number of members the field value really had.
#[derive(Debug)]
pub(crate) struct CountedDictionary {
    /// The parsed dictionary (duplicates collapsed to the last one, per RFC 8941).
    pub dict: Dictionary,
    /// Members seen on the wire, duplicates included.
    pub members: usize,
    /// The first key seen more than once, if any.
    pub first_duplicate: Option<String>,
}

struct CountingVisitor {
    dict: Dictionary,
    members: usize,
    first_duplicate: Option<String>,
}

impl<'de> DictionaryVisitor<'de> for CountingVisitor {
    type Out = CountedDictionary;
    type Error = Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        self.members = self.members.saturating_add(1);
        if self.first_duplicate.is_none() && self.dict.contains_key(key) {
            self.first_duplicate = Some(key.as_str().to_owned());
        }
        <Dictionary as DictionaryVisitor<'de>>::entry(&mut self.dict, key)
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(CountedDictionary {
            dict: self.dict,
            members: self.members,
            first_duplicate: self.first_duplicate,
        })
    }
}

/// Parses an RFC 8941 dictionary (no RFC 9651 dates or display strings:
/// RFC 9421 and RFC 9530 are defined on RFC 8941), counting its members.
pub(crate) fn parse_dictionary(text: &str) -> Result<CountedDictionary, sfv::Error> {
    Parser::new(text)
        .with_version(Version::Rfc8941)
        .parse_dictionary_with_visitor(CountingVisitor {
            dict: Dictionary::new(),
            members: 0,
            first_duplicate: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_duplicate_keys_that_sfv_collapses() {
        let parsed = parse_dictionary("sig=(), sig=(\"@method\")").unwrap();
        assert_eq!(parsed.dict.len(), 1);
        assert_eq!(parsed.members, 2);
        assert_eq!(parsed.first_duplicate.as_deref(), Some("sig"));
    }

    #[test]
    fn refuses_rfc9651_only_types() {
        assert!(parse_dictionary("a=@1659578233").is_err());
        assert!(parse_dictionary("a=%\"x\"").is_err());
    }
}
