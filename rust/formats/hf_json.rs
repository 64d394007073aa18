//! Hugging Face `tokenizer.json` with a byte-level BPE model.

use super::gpt2::{check_complete, parse_vocab_object};
use super::{build_vocab, display, read_text, Loaded};
use crate::byte_alphabet::{bytes_to_token_string, token_string_to_bytes};
use crate::error::Error;
use crate::pretokenize::GPT2_PATTERN;
use crate::system::publish::write_durably;
use crate::vocab::{MergePair, SpecialToken, Vocab};
use serde_json::{json, Value};
use std::path::Path;

/// The pattern and prefix-space setting of a supported pre-tokenizer: GPT-2's
/// ByteLevel, or a regex Split followed by a ByteLevel without its own regex.
fn read_pretokenizer(node: &Value, file: &str) -> Result<(String, bool), Error> {
    let unsupported = || {
        Error::file(
            file,
            "pre_tokenizer",
            format!(
                "unsupported pre-tokenizer {node}; bbpe reads ByteLevel, or Sequence[Split(Regex), ByteLevel]"
            ),
        )
    };
    let byte_level = |n: &Value| {
        (n["type"] == "ByteLevel").then(|| {
            (
                n["use_regex"].as_bool().unwrap_or(true),
                n["add_prefix_space"].as_bool().unwrap_or(false),
            )
        })
    };
    if let Some((true, prefix)) = byte_level(node) {
        return Ok((GPT2_PATTERN.to_string(), prefix));
    }
    if node["type"] == "Sequence" {
        if let Some([split, last]) = node["pretokenizers"].as_array().map(Vec::as_slice) {
            let pattern = split["pattern"]["Regex"].as_str();
            let isolated = split["behavior"] == "Isolated" && split["invert"] != true;
            if let (Some(pattern), true, Some((false, prefix))) = (
                pattern,
                split["type"] == "Split" && isolated,
                byte_level(last),
            ) {
                return Ok((pattern.to_string(), prefix));
            }
        }
    }
    Err(unsupported())
}

/// Whether a supported post-processor adds RoBERTa's template
/// (`<s> A </s></s> B </s>`, with the ids of `specials`); the other supported
/// ones add nothing: none, ByteLevel (offsets only), a TemplateProcessing of
/// the bare sequences (what transformers writes for GPT-2), or a Sequence of
/// these.
fn read_post_processor(node: &Value, specials: &[SpecialToken], file: &str) -> Result<bool, Error> {
    let unsupported = |why: &str| {
        Error::file(
            file,
            "post_processor",
            format!("{why}: {node}; bbpe adds RoBERTa's template <s> A </s></s> B </s> or nothing"),
        )
    };
    let special_id = |content: &str| specials.iter().find(|s| s.content == content).map(|s| s.id);
    let is_special = |name: &Value, id: &Value| {
        name.as_str()
            .and_then(special_id)
            .is_some_and(|known| id.as_u64() == Some(u64::from(known)))
    };
    match node["type"].as_str() {
        None if node.is_null() => Ok(false),
        Some("ByteLevel") => Ok(false),
        Some("RobertaProcessing") => {
            let (cls, sep) = (&node["cls"], &node["sep"]);
            if cls[0] == "<s>"
                && sep[0] == "</s>"
                && is_special(&cls[0], &cls[1])
                && is_special(&sep[0], &sep[1])
            {
                Ok(true)
            } else {
                Err(unsupported(
                    "cls and sep must be the added tokens <s> and </s>",
                ))
            }
        }
        Some("TemplateProcessing") => {
            // Each piece as a name: the sequences as $A and $B, special tokens as themselves.
            let pieces = |template: &Value| -> Option<Vec<String>> {
                template
                    .as_array()?
                    .iter()
                    .map(
                        |piece| match (&piece["Sequence"]["id"], &piece["SpecialToken"]["id"]) {
                            (Value::String(seq), Value::Null) => Some(format!("${seq}")),
                            (Value::Null, Value::String(token)) => Some(token.clone()),
                            _ => None,
                        },
                    )
                    .collect()
            };
            let single = pieces(&node["single"]).unwrap_or_default();
            let pair = pieces(&node["pair"]).unwrap_or_default();
            let ids_match = ["<s>", "</s>"].iter().all(|&t| {
                let ids = &node["special_tokens"][t]["ids"];
                ids.as_array().is_some_and(|ids| ids.len() == 1)
                    && is_special(&Value::from(t), &ids[0])
            });
            if single == ["$A"] && pair == ["$A", "$B"] {
                Ok(false)
            } else if single == ["<s>", "$A", "</s>"]
                && pair == ["<s>", "$A", "</s>", "</s>", "$B", "</s>"]
                && ids_match
            {
                Ok(true)
            } else {
                Err(unsupported("a template other than RoBERTa's or none"))
            }
        }
        Some("Sequence") => {
            let processors = node["processors"]
                .as_array()
                .ok_or_else(|| unsupported("a Sequence needs a list of processors"))?;
            let mut template = false;
            for processor in processors {
                template |= read_post_processor(processor, specials, file)?;
            }
            Ok(template)
        }
        _ => Err(unsupported("unsupported post-processor")),
    }
}

/// Where merge `i` is in tokenizer.json.
fn merge_place(i: usize) -> String {
    format!("model.merges[{i}]")
}

fn read_merges(node: &Value, file: &str) -> Result<Vec<MergePair>, Error> {
    let list = node
        .as_array()
        .ok_or_else(|| Error::file(file, "model.merges", "must be a list"))?;
    let mut merges = Vec::with_capacity(list.len());
    for (i, merge) in list.iter().enumerate() {
        let parts: Option<(&str, &str)> = match merge {
            Value::String(s) => s.split_once(' ').filter(|(_, r)| !r.contains(' ')),
            Value::Array(pair) if pair.len() == 2 => pair[0].as_str().zip(pair[1].as_str()),
            _ => None,
        };
        let (left, right) = parts.ok_or_else(|| {
            Error::file(
                file,
                merge_place(i),
                format!("expected \"a b\" or [a, b], got {merge}"),
            )
        })?;
        let decode = |part: &str| {
            token_string_to_bytes(part).map_err(|c| {
                Error::file(
                    file,
                    merge_place(i),
                    format!("character {c:?} is not in GPT-2's byte alphabet"),
                )
            })
        };
        merges.push((decode(left)?, decode(right)?));
    }
    Ok(merges)
}

pub fn load(path: &Path) -> Result<Loaded, Error> {
    parse(&read_text(path)?, &display(path))
}

/// Reads tokenizer.json text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Loaded, Error> {
    let file = file.to_string();
    let root: Value = serde_json::from_str(text)
        .map_err(|e| Error::file(&file, "", format!("not valid JSON: {e}")))?;
    let model = &root["model"];
    if model["type"] != "BPE" {
        return Err(Error::file(
            &file,
            "model.type",
            format!("expected \"BPE\", got {}", model["type"]),
        ));
    }
    for (key, neutral) in [
        ("continuing_subword_prefix", ""),
        ("end_of_word_suffix", ""),
    ] {
        if !(model[key].is_null() || model[key] == neutral) {
            return Err(Error::file(
                &file,
                format!("model.{key}"),
                "is not supported by byte-level BPE",
            ));
        }
    }
    for key in ["byte_fallback", "ignore_merges"] {
        if model[key] == true {
            return Err(Error::file(
                &file,
                format!("model.{key}"),
                "true is not supported",
            ));
        }
    }
    if !(model["dropout"].is_null() || model["dropout"] == 0.0) {
        return Err(Error::file(
            &file,
            "model.dropout",
            "BPE dropout is not supported",
        ));
    }
    if !root["normalizer"].is_null() {
        return Err(Error::file(
            &file,
            "normalizer",
            "normalizers are not supported",
        ));
    }
    let (pattern, add_prefix_space) = read_pretokenizer(&root["pre_tokenizer"], &file)?;

    let mut specials = Vec::new();
    for (i, added) in root["added_tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let content = added["content"].as_str();
        let id = added["id"].as_u64().and_then(|id| u32::try_from(id).ok());
        let (Some(content), Some(id)) = (content, id) else {
            return Err(Error::file(
                &file,
                format!("added_tokens[{i}]"),
                "needs a string content and an integer id",
            ));
        };
        if added["single_word"] == true {
            // bbpe cuts an added token out wherever it occurs, also inside a word
            return Err(Error::file(
                &file,
                format!("added_tokens[{i}].single_word"),
                "true is not supported",
            ));
        }
        let mut special = SpecialToken::new(content, id);
        special.lstrip = added["lstrip"] == true;
        special.rstrip = added["rstrip"] == true;
        specials.push(special);
    }
    let roberta_template = read_post_processor(&root["post_processor"], &specials, &file)?;
    let names: Vec<String> = specials.iter().map(|s| s.content.clone()).collect();
    let entries = model["vocab"]
        .as_object()
        .ok_or_else(|| Error::file(&file, "model.vocab", "must be an object of token -> id"))?;
    let (tokens, _) = parse_vocab_object(entries.iter(), &format!("{file}, model.vocab"), &names)?;
    let merges = read_merges(&model["merges"], &file)?;
    let vocab = build_vocab(tokens, merges, specials, &file, &file, merge_place)?;
    check_complete(&vocab, &file, &file)?;
    Ok(Loaded {
        vocab,
        pattern,
        add_prefix_space,
        roberta_template,
    })
}

/// The tokenizer.json text. With `roberta_template` the post-processor adds
/// RoBERTa's templates, as `roberta-base`'s own file does.
pub fn to_json(
    vocab: &Vocab,
    pattern: &str,
    add_prefix_space: bool,
    roberta_template: bool,
) -> String {
    let added: Vec<Value> = vocab
        .specials()
        .iter()
        .map(|s| {
            json!({"id": s.id, "content": s.content, "single_word": false, "lstrip": s.lstrip,
                   "rstrip": s.rstrip, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = |use_regex: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space,
               "trim_offsets": true, "use_regex": use_regex})
    };
    let pre_tokenizer = if pattern == GPT2_PATTERN {
        byte_level(true)
    } else {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            byte_level(false)]})
    };
    let template_ids = (vocab.special_id("<s>"), vocab.special_id("</s>"));
    let post_processor = match template_ids {
        (Some(cls), Some(sep)) if roberta_template => {
            json!({"type": "RobertaProcessing", "sep": ["</s>", sep],
            "cls": ["<s>", cls], "trim_offsets": true, "add_prefix_space": add_prefix_space})
        }
        _ => byte_level(true),
    };
    let vocab_map = vocab.token_strings();
    let merges: Vec<Value> = vocab
        .merges()
        .iter()
        .map(|&(l, r, _)| {
            let name = |id| bytes_to_token_string(vocab.token_bytes(id).unwrap_or_default());
            Value::from(format!("{} {}", name(l), name(r)))
        })
        .collect();
    let root = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": byte_level(true),
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab_map, "merges": merges},
    });
    serde_json::to_string_pretty(&root).expect("JSON values serialise")
}

pub fn save(
    vocab: &Vocab,
    pattern: &str,
    add_prefix_space: bool,
    roberta_template: bool,
    path: &Path,
) -> Result<(), Error> {
    let text = to_json(vocab, pattern, add_prefix_space, roberta_template);
    write_durably(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(node: Value) -> Result<bool, Error> {
        let specials = [SpecialToken::new("<s>", 0), SpecialToken::new("</s>", 2)];
        read_post_processor(&node, &specials, "t.json")
    }

    #[test]
    fn the_post_processor_decides_robertas_template() {
        let roberta = json!({"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]});
        let bare = json!({"type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {}});
        assert!(!read(Value::Null).unwrap());
        assert!(!read(json!({"type": "ByteLevel"})).unwrap());
        assert!(!read(bare).unwrap());
        assert!(read(roberta.clone()).unwrap());
        let sequence = json!({"type": "Sequence", "processors": [{"type": "ByteLevel"}, roberta]});
        assert!(read(sequence).unwrap());
    }

    #[test]
    fn other_post_processors_are_refused_naming_the_file_and_field() {
        let wrong_id = json!({"type": "RobertaProcessing", "sep": ["</s>", 5], "cls": ["<s>", 0]});
        let bert = json!({"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]});
        for node in [wrong_id, bert] {
            let message = read(node).unwrap_err().to_string();
            assert!(
                message.contains("t.json") && message.contains("post_processor"),
                "{message}"
            );
        }
    }
}
