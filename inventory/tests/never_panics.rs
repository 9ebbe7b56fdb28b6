//! `parse_str` is total: whatever the text, it returns an inventory or an error with a
//! position inside the text, and never panics (a panic inside the parsing thread would show
//! up as an "internal error" diagnostic, which these tests also refuse).

use inventory::{InventoryError, parse_str};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../examples/camau.yaml");

/// Checks the outcome of parsing `text`: Ok, or Invalid at a position inside the text.
fn check_total(text: &str) -> Result<(), TestCaseError> {
    match parse_str(text, "p.yaml") {
        Ok(inv) => {
            // Whatever was accepted is usable.
            let _ = inv.machines();
        }
        Err(InventoryError::Invalid { line, column, message, .. }) => {
            prop_assert!(!message.starts_with("internal error"), "the parser panicked: {}", message);
            let lines = text.split(['\n', '\r']).count().max(1);
            prop_assert!(line >= 1 && line <= lines + 1, "line {} of {}", line, lines);
            prop_assert!(column >= 1, "column {}", column);
        }
        Err(other) => prop_assert!(false, "unexpected error kind: {:?}", other),
    }
    Ok(())
}

/// One edit of the example's bytes or lines.
#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { at: usize, bits: u8 },
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Insert { at: usize, text: &'static str },
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = EXAMPLE.len();
    let lines = EXAMPLE.lines().count();
    prop_oneof![
        (0..n, 1u8..=255).prop_map(|(at, bits)| Mutation::FlipByte { at, bits }),
        (0..lines).prop_map(Mutation::DeleteLine),
        (0..lines).prop_map(Mutation::DuplicateLine),
        (0..lines, 0..lines).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (
            0..n,
            prop::sample::select(vec![
                ":", "- ", "{", "}", "[", "]", "\"", "'", "#", "&a ", "*a", "!t ", "\n", "\t", "  ", "---\n", "? ",
                "|\n", ">\n", "~", "6", "-1", "1e9", "\u{feff}", "\r",
            ])
        )
            .prop_map(|(at, text)| Mutation::Insert { at, text }),
        (0..n).prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.len().saturating_sub(1);
    let line_edit = matches!(m, Mutation::DeleteLine(_) | Mutation::DuplicateLine(_) | Mutation::SwapLines(..));
    if line_edit && lines.is_empty() {
        return text.to_owned();
    }
    match *m {
        Mutation::FlipByte { at, bits } => {
            let mut bytes = text.as_bytes().to_vec();
            if let Some(b) = bytes.get_mut(at) {
                *b ^= bits;
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        Mutation::DeleteLine(i) => {
            lines.remove(i.min(last));
        }
        Mutation::DuplicateLine(i) => {
            let i = i.min(last);
            lines.insert(i, lines[i]);
        }
        Mutation::SwapLines(a, b) => lines.swap(a.min(last), b.min(last)),
        Mutation::Insert { at, text: ins } => {
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            return format!("{}{ins}{}", &text[..at], &text[at..]);
        }
        Mutation::Truncate(at) => {
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            return text[..at].to_owned();
        }
    }
    lines.join("\n") + "\n"
}

/// 512 cases by default; `PROPTEST_CASES=100000` for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_total(&text)?;
    }

    #[test]
    fn yaml_ish_text_never_panics(
        text in prop::collection::vec(
            prop::sample::select(vec![
                "province", "sites", "hosts", "name", ":", " ", "  ", "- ", "\n", "{", "}", "[",
                "]", ",", "\"", "'", "#", "&a", "*a", "!", "?", "|", ">", "dc", "6", "1h", "~",
                "level", "192.0.2.1", "\t", "---", "...", "%YAML 1.2", "\\", "\r\n",
            ]),
            0..80,
        ).prop_map(|parts| parts.concat())
    ) {
        check_total(&text)?;
    }

    #[test]
    fn mutations_of_the_example_never_panic(
        ms in prop::collection::vec(mutation(), 1..4)
    ) {
        let mut text = EXAMPLE.to_owned();
        for m in &ms {
            text = apply(&text, m);
        }
        check_total(&text)?;
    }
}

#[test]
fn the_unmutated_example_is_accepted() {
    assert!(parse_str(EXAMPLE, "camau.yaml").is_ok());
}

#[test]
fn pathological_texts_are_refused_cleanly() {
    let texts = [
        "- ".repeat(100_000),
        "? ".repeat(100_000),
        "[".repeat(100_000),
        "{a: ".repeat(100_000),
        format!("{}x", " ".repeat(5_000)),
        "a: &a [*a]".to_owned(),
        "*unknown".to_owned(),
        "\u{feff}province: x".to_owned(),
        "\0".to_owned(),
        "province: x\nsites: []\n".repeat(3),
    ];
    for text in &texts {
        match parse_str(text, "p.yaml") {
            Ok(_) => {}
            Err(e) => assert!(
                !e.to_string().contains("internal error"),
                "{}",
                e.to_string().chars().take(200).collect::<String>()
            ),
        }
    }
    let huge = "#".repeat(9 << 20);
    let err = parse_str(&huge, "p.yaml").expect_err("too large");
    assert!(err.to_string().contains("limited to"), "{err}");
}
