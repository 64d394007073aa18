//! The text field of one JSONL line. The object is walked with serde, keeping
//! only the wanted value and skipping the rest unparsed into values, so a
//! record costs one pass and no allocation: the text is borrowed from the line
//! when it has no escapes, and unescaped into a reused buffer otherwise.

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;
use std::fmt;

/// The string value of `field` in the JSON object `line` (the last one if the
/// key repeats, as Python's `json` does), possibly held in `scratch`, and
/// whether the line had lone surrogate escapes (replaced by U+FFFD); or what
/// is wrong with the line.
pub(crate) fn text_field<'a>(
    line: &'a str,
    field: &str,
    scratch: &'a mut String,
) -> Result<(&'a str, bool), String> {
    let mut deserializer = serde_json::Deserializer::from_str(line);
    let record = Record { field, scratch };
    let found = deserializer
        .deserialize_map(record)
        .and_then(|found| deserializer.end().map(|()| found));
    match found {
        Ok(Found::Borrowed(text)) => Ok((text, false)),
        Ok(Found::Copied) => Ok((scratch, false)),
        Ok(Found::Missing) => Err(format!("no {field:?} field")),
        Ok(Found::NotString) => Err(format!("field {field:?} is not a string")),
        // A data error can only be a line that is not an object (values
        // inside one are all accepted); it may still not be JSON at all.
        Err(e) if e.is_data() => match serde_json::from_str::<IgnoredAny>(line) {
            Ok(_) => Err(format!("no {field:?} field")),
            Err(e) => Err(not_json(&e)),
        },
        Err(e) => match without_lone_surrogates(line) {
            // Lone surrogate escapes, which Python's `json.dumps` writes for
            // strings that hold them, get the policy of strings passed to the
            // API: U+FFFD. (serde rejects them; this slow path is rare.)
            Some(line) => {
                let mut unescaped = String::new();
                let (text, _) = text_field(&line, field, &mut unescaped)?;
                *scratch = text.to_string();
                Ok((scratch, true))
            }
            None => Err(not_json(&e)),
        },
    }
}

/// `line` with each `\u` escape of a surrogate that is not half of a pair
/// replaced by `\ufffd` (of the same length, so columns stay), or `None`
/// if it has none. Outside strings a backslash is an error either way.
fn without_lone_surrogates(line: &str) -> Option<String> {
    const REPLACEMENT: &[u8] = br"\ufffd";
    let bytes = line.as_bytes();
    // The surrogate escaped at `i`, if any.
    let surrogate_at = |i: usize| {
        let hex = bytes.get(i..i + 6)?.strip_prefix(br"\u")?;
        let unit = u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        (0xd800..0xe000).contains(&unit).then_some(unit)
    };
    let mut fixed = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            fixed.push(bytes[i]);
            i += 1;
        } else if let Some(unit) = surrogate_at(i) {
            let paired = unit < 0xdc00 && surrogate_at(i + 6).is_some_and(|low| low >= 0xdc00);
            let length = if paired { 12 } else { 6 };
            fixed.extend_from_slice(if paired {
                &bytes[i..i + 12]
            } else {
                REPLACEMENT
            });
            i += length;
        } else {
            // Any other escape, taken whole so that `\\` never starts one.
            let end = (i + 2).min(bytes.len());
            fixed.extend_from_slice(&bytes[i..end]);
            i = end;
        }
    }
    let fixed = String::from_utf8(fixed).expect("only ASCII escapes were replaced");
    (fixed != line).then_some(fixed)
}

/// serde's message with the column; the line is the caller's to give.
fn not_json(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let reason = message.strip_suffix(&position).unwrap_or(&message);
    format!("not valid JSON ({reason}, column {})", e.column())
}

enum Found<'de> {
    Missing,
    NotString,
    Borrowed(&'de str),
    /// Unescaped into the scratch buffer.
    Copied,
}

/// The whole object: finds `field` among its keys.
struct Record<'f, 's> {
    field: &'f str,
    scratch: &'s mut String,
}

impl<'de> Visitor<'de> for Record<'_, '_> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found<'de>, A::Error> {
        let mut found = Found::Missing;
        while let Some(wanted) = map.next_key_seed(KeyIs(self.field))? {
            if wanted {
                found = map.next_value_seed(Text(&mut *self.scratch))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A key, compared with the wanted one without being copied.
struct KeyIs<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The wanted field's value: any JSON value is accepted, so that a
/// non-string is reported as such rather than as a parse error.
struct Text<'s>(&'s mut String);

impl<'de> DeserializeSeed<'de> for Text<'_> {
    type Value = Found<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Found<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text<'_> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Found<'de>, E> {
        Ok(Found::Borrowed(text))
    }

    fn visit_str<E>(self, text: &str) -> Result<Found<'de>, E> {
        self.0.clear();
        self.0.push_str(text);
        Ok(Found::Copied)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Found<'de>, E> {
        Ok(Found::NotString)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Found<'de>, E> {
        Ok(Found::NotString)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Found<'de>, E> {
        Ok(Found::NotString)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Found<'de>, E> {
        Ok(Found::NotString)
    }

    fn visit_unit<E>(self) -> Result<Found<'de>, E> {
        Ok(Found::NotString)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Found::NotString)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Found::NotString)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &str, field: &str) -> Result<String, String> {
        text_field(line, field, &mut String::new()).map(|(text, _)| text.to_string())
    }

    #[test]
    fn text_without_escapes_is_borrowed_from_the_line() {
        let line = r#"{"id": 1, "text": "plain text"}"#;
        let mut scratch = String::new();
        let (found, _) = text_field(line, "text", &mut scratch).unwrap();
        assert_eq!(found, "plain text");
        assert!(line.as_bytes().as_ptr_range().contains(&found.as_ptr()));
    }

    #[test]
    fn escaped_text_is_unescaped() {
        let line = r#"{"text": "two\nlines \"quoted\" \u00e9 \ud83d\ude00"}"#;
        assert_eq!(
            text(line, "text").unwrap(),
            "two\nlines \"quoted\" é \u{1f600}"
        );
    }

    #[test]
    fn lines_with_lone_surrogates_are_told_apart() {
        let replaced = |line| text_field(line, "text", &mut String::new()).unwrap().1;
        assert!(replaced(r#"{"text": "a\udc00", "b": "c"}"#));
        // Other fields are skipped without being unescaped.
        assert!(!replaced(r#"{"text": "a", "b": "\udc00"}"#));
        assert!(!replaced(r#"{"text": "\ud83d\ude00"}"#));
        assert!(!replaced(r#"{"text": "plain"}"#));
    }

    #[test]
    fn lone_surrogate_escapes_become_replacement_characters() {
        // As Python's json.dumps writes lone surrogates; pairs stay characters.
        let line =
            r#"{"a": "\udc00", "text": "x\ud800y \ud83d\ude00 \udfff\ud800\ud800\udc00 \ud800\n"}"#;
        assert_eq!(
            text(line, "text").unwrap(),
            "x\u{fffd}y \u{1f600} \u{fffd}\u{fffd}\u{10000} \u{fffd}\n"
        );
        // An escaped backslash before "u" is not an escape.
        assert_eq!(text(r#"{"text": "\\ud800"}"#, "text").unwrap(), "\\ud800");
        assert_eq!(
            text(r#"{"text": "\ud800", "b": "\\"}"#, "text").unwrap(),
            "\u{fffd}"
        );
        // Other errors are found and placed as in a line without them.
        assert_eq!(
            text(r#"{"text": "\ud800", }"#, "text").unwrap_err(),
            "not valid JSON (trailing comma, column 20)"
        );
    }

    #[test]
    fn other_fields_of_any_shape_are_skipped() {
        let line =
            r#"{"meta": {"text": 1, "a": [1, {"b": null}]}, "n": -1.5e3, "text": "x", "z": true}"#;
        assert_eq!(text(line, "text").unwrap(), "x");
        assert_eq!(text(r#"{"body": "y", "text": 2}"#, "body").unwrap(), "y");
        assert_eq!(
            text(r#"{"t\u0065xt": "escaped key"}"#, "text").unwrap(),
            "escaped key"
        );
    }

    #[test]
    fn the_last_of_repeated_keys_wins() {
        assert_eq!(text(r#"{"text": 1, "text": "b"}"#, "text").unwrap(), "b");
        let error = text(r#"{"text": "a", "text": null}"#, "text").unwrap_err();
        assert_eq!(error, "field \"text\" is not a string");
    }

    #[test]
    fn a_missing_field_or_a_non_object_has_no_field() {
        for line in [
            r#"{"body": "x"}"#,
            "{}",
            r#"["text"]"#,
            r#""text""#,
            "3",
            "null",
        ] {
            assert_eq!(
                text(line, "text").unwrap_err(),
                "no \"text\" field",
                "{line}"
            );
        }
    }

    #[test]
    fn a_non_string_field_is_reported_as_such() {
        for value in ["1", "true", "null", "[\"a\"]", "{\"a\": \"b\"}"] {
            let line = format!("{{\"text\": {value}}}");
            let error = text(&line, "text").unwrap_err();
            assert_eq!(error, "field \"text\" is not a string", "{line}");
        }
    }

    #[test]
    fn malformed_json_names_the_problem_and_column() {
        assert_eq!(
            text(r#"{"text": "a",}"#, "text").unwrap_err(),
            "not valid JSON (trailing comma, column 14)"
        );
        assert_eq!(
            text(r#"{"text": "a""#, "text").unwrap_err(),
            "not valid JSON (EOF while parsing an object, column 12)"
        );
        assert_eq!(
            text(r#"{"text": "a"} x"#, "text").unwrap_err(),
            "not valid JSON (trailing characters, column 15)"
        );
        // Not an object, and not JSON either: the syntax is what is wrong.
        assert_eq!(
            text("[1, 2", "text").unwrap_err(),
            "not valid JSON (EOF while parsing a list, column 5)"
        );
    }
}
