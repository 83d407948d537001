//! Record values as JSON: readable with any sled dump and tolerant of added
//! optional fields. A value that fails to decode is reported as
//! [`StateError::Corrupt`] naming its tree and key; nothing here panics.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StateError;
use crate::keys;

pub(crate) fn encode<T: Serialize>(
    tree: &str,
    key: &[u8],
    value: &T,
) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(value).map_err(|source| StateError::Encode {
        what: location(tree, key),
        source,
    })
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|source| StateError::Corrupt {
        what: location(tree, key),
        source,
    })
}

/// The text of an index value (a run id), or [`StateError::CorruptKey`].
pub(crate) fn decode_text<'a>(
    tree: &str,
    key: &[u8],
    bytes: &'a [u8],
) -> Result<&'a str, StateError> {
    std::str::from_utf8(bytes).map_err(|_| StateError::CorruptKey {
        what: format!("{} holds a value that is not UTF-8", location(tree, key)),
    })
}

pub(crate) fn location(tree: &str, key: &[u8]) -> String {
    format!("tree `{tree}`, key `{}`", keys::describe(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Trigger;

    #[test]
    fn undecodable_value_names_tree_and_key() {
        let error = decode::<Trigger>("runs", b"r\0x", b"{not json").err();
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("tree `runs`"), "{message}");
        assert!(message.contains("key `r\\x00x`"), "{message}");
    }

    #[test]
    fn encoded_value_decodes_to_itself() -> Result<(), StateError> {
        let trigger = Trigger {
            kind: "cron".into(),
            detail: "0 * * * *".into(),
        };
        let bytes = encode("runs", b"k", &trigger)?;
        assert_eq!(decode::<Trigger>("runs", b"k", &bytes)?, trigger);
        Ok(())
    }
}
