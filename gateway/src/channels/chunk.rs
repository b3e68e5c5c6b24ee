//! Outbound chunking for chat channels (`channels.md` §5.1): a reply too
//! long for one message is split at the channel's limits (Telegram 4000
//! characters, Discord 2000 characters and 17 lines), preferring a
//! paragraph break, then a line break, then a sentence end, then a space,
//! and only then a hard cut; never inside a code fence unless the fence
//! alone is too long, in which case the fence is closed at the end of the
//! chunk and reopened (with its language tag) at the start of the next.

/// A channel's limits for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Characters per message (`textChunkLimit`).
    pub chars: usize,
    /// Lines per message (`maxLinesPerMessage`; `usize::MAX` for none).
    pub lines: usize,
}

/// Telegram: 4000 characters (the platform allows 4096).
pub const TELEGRAM: Limits = Limits {
    chars: 4000,
    lines: usize::MAX,
};

/// Discord: 2000 characters and 17 lines.
pub const DISCORD: Limits = Limits {
    chars: 2000,
    lines: 17,
};

/// What closes a fence that a chunk had to cut.
const CLOSE: &str = "\n```";

/// Splits `text` into messages within `limits`, in order. Empty text gives
/// no message; whitespace around the cuts is dropped.
pub fn chunk(text: &str, limits: Limits) -> Vec<String> {
    let chars = limits.chars.max(16);
    let lines = limits.lines.max(3);
    let mut out = Vec::new();
    let mut rest = text.trim_end().trim_start_matches('\n').to_string();
    // Bytes at the start of `rest` that reopen a cut fence: a cut must
    // take more than those, or nothing would move on.
    let mut reopened = 0;
    while !rest.trim().is_empty() {
        if rest.chars().count() <= chars && rest.lines().count() <= lines {
            out.push(rest);
            break;
        }
        // Room for this chunk's text, keeping space (and a line) to close
        // a fence that has to be cut.
        let window = window(&rest, chars - CLOSE.len(), lines - 1);
        let cut = best_cut(&rest, window, reopened);
        let mut message = rest[..cut.at].trim_end().to_string();
        let mut next = rest[cut.at..].trim_start_matches([' ', '\n']).to_string();
        reopened = 0;
        if let Some(header) = cut.open_fence {
            message.push_str(CLOSE);
            // A long info string is not worth repeating in every chunk.
            let header = if header.len() + 1 < (chars - CLOSE.len()) / 2 {
                header
            } else {
                "```".to_string()
            };
            reopened = header.len() + 1;
            next = format!("{header}\n{next}");
        }
        out.push(message);
        rest = next;
    }
    out
}

/// The byte length of the longest prefix of `s` within `chars` characters
/// and `lines` lines.
fn window(s: &str, chars: usize, lines: usize) -> usize {
    let mut newlines = 0;
    for (n, (i, c)) in s.char_indices().enumerate() {
        if n == chars {
            return i;
        }
        if c == '\n' {
            newlines += 1;
            if newlines == lines {
                return i;
            }
        }
    }
    s.len()
}

struct Cut {
    /// Byte offset in the text to cut at.
    at: usize,
    /// The header (```lang) of a fence left open at the cut, to close
    /// there and reopen in the next chunk.
    open_fence: Option<String>,
}

/// The header line of the fence still open after the first `at` bytes of
/// `s`, if one is.
fn fence_at(s: &str, at: usize) -> Option<String> {
    let mut open: Option<String> = None;
    for line in s[..at].split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            open = match open {
                Some(_) => None,
                // The fence and its info string (```rust), not the rest.
                None => line.split_whitespace().next().map(str::to_string),
            };
        }
    }
    open
}

/// Where to cut the first `window` bytes of `s`: the latest cut of the
/// most preferred kind outside a fence; else, inside the fence, its latest
/// line break (or a hard cut), with the fence to close and reopen.
fn best_cut(s: &str, window: usize, min_at: usize) -> Cut {
    let head = &s[..window];
    let starts_fence = |i: usize| s[i..].trim_start_matches('\n').starts_with("```");
    let paragraph: Vec<usize> = head.match_indices("\n\n").map(|(i, _)| i).collect();
    let newline: Vec<usize> = head.match_indices('\n').map(|(i, _)| i).collect();
    let sentence: Vec<usize> = head
        .match_indices(['.', '!', '?'])
        .filter(|(i, _)| head[i + 1..].starts_with(' '))
        .map(|(i, _)| i + 1)
        .collect();
    let space: Vec<usize> = head.match_indices([' ', '\t']).map(|(i, _)| i).collect();
    for kind in [&paragraph, &newline, &sentence, &space] {
        // Outside a fence: no fence open before the cut, and the cut is
        // not just before a closing fence line.
        if let Some(&at) = kind.iter().rev().find(|&&i| {
            i > min_at
                && fence_at(s, i).is_none()
                && !(starts_fence(i) && fence_at(s, i + 1).is_some())
        }) {
            return Cut {
                at,
                open_fence: None,
            };
        }
    }
    // Inside a fence: its latest line break past the fence's first line,
    // else a hard cut at the window (on a character boundary).
    let first_line_end = s.find('\n').unwrap_or(s.len()).max(min_at);
    let at = newline
        .iter()
        .rev()
        .copied()
        .find(|&i| i > first_line_end)
        .unwrap_or(window)
        .max(min_at + s[min_at..].chars().next().map_or(0, char::len_utf8));
    Cut {
        at,
        open_fence: fence_at(s, at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fits(chunks: &[String], l: Limits) {
        for c in chunks {
            assert!(c.chars().count() <= l.chars, "{} chars", c.chars().count());
            assert!(c.lines().count() <= l.lines, "{} lines", c.lines().count());
        }
    }

    #[test]
    fn short_text_is_one_message_and_empty_is_none() {
        assert_eq!(chunk("hello", TELEGRAM), ["hello"]);
        assert!(chunk("\n\n", TELEGRAM).is_empty());
    }

    #[test]
    fn nine_thousand_characters_are_three_telegram_messages_in_order() {
        let para = "word ".repeat(199) + "ends.";
        let text = (0..9)
            .map(|_| para.clone())
            .collect::<Vec<_>>()
            .join("\n\n");
        assert_eq!(text.chars().count(), 9 * 1000 + 8 * 2);
        let chunks = chunk(&text, TELEGRAM);
        assert_eq!(
            chunks.len(),
            3,
            "{:?}",
            chunks.iter().map(String::len).collect::<Vec<_>>()
        );
        fits(&chunks, TELEGRAM);
        // Cut at paragraph breaks: nothing lost, nothing reordered.
        assert_eq!(chunks.join("\n\n"), text);
    }

    #[test]
    fn discord_splits_tall_messages_under_the_character_limit() {
        let text = (1..=40)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let chunks = chunk(&text, DISCORD);
        fits(&chunks, DISCORD);
        assert!(chunks.len() >= 3);
        assert_eq!(chunks.join("\n"), text);
    }

    #[test]
    fn cuts_prefer_sentences_then_spaces_then_hard() {
        let l = Limits {
            chars: 40,
            lines: usize::MAX,
        };
        let chunks = chunk("One sentence here. Another one follows it. And a third.", l);
        assert_eq!(chunks[0], "One sentence here.");
        let chunks = chunk(&"abcdefghij ".repeat(10), l);
        assert!(
            chunks
                .iter()
                .all(|c| !c.starts_with(' ') && !c.ends_with(' '))
        );
        fits(&chunks, l);
        let hard = chunk(&"x".repeat(100), l);
        fits(&hard, l);
        assert_eq!(hard.concat(), "x".repeat(100));
        // Multi-byte characters are never split.
        let wide = chunk(&"é".repeat(100), l);
        assert_eq!(wide.concat(), "é".repeat(100));
    }

    #[test]
    fn a_code_block_is_kept_whole_when_it_fits() {
        let l = Limits {
            chars: 120,
            lines: usize::MAX,
        };
        let text = format!(
            "{}\n\n```rust\nfn main() {{}}\nlet x = 1;\n```\n\nafter",
            "intro ".repeat(12)
        );
        let chunks = chunk(&text, l);
        fits(&chunks, l);
        let with_code = chunks.iter().find(|c| c.contains("fn main")).unwrap();
        assert!(
            with_code.contains("```rust") && with_code.matches("```").count() == 2,
            "{chunks:?}"
        );
    }

    #[test]
    fn a_code_block_too_long_is_closed_and_reopened() {
        let l = Limits {
            chars: 60,
            lines: usize::MAX,
        };
        let body = (0..12)
            .map(|i| format!("let v{i} = {i};"))
            .collect::<Vec<_>>()
            .join("\n");
        let text = format!("```rust\n{body}\n```");
        let chunks = chunk(&text, l);
        fits(&chunks, l);
        assert!(chunks.len() >= 3, "{chunks:?}");
        for c in &chunks {
            // Every chunk is a complete block of its own.
            assert_eq!(c.matches("```").count(), 2, "{c:?}");
        }
        assert!(chunks[0].starts_with("```rust\n"));
        for i in 0..12 {
            assert_eq!(
                chunks
                    .iter()
                    .filter(|c| c.contains(&format!("let v{i} = {i};")))
                    .count(),
                1
            );
        }
    }

    proptest::proptest! {
        /// Whatever the text (fences included, balanced or not) and
        /// limits: every chunk fits, and no text is lost or reordered.
        #[test]
        fn chunks_fit_and_lose_nothing(
            words in proptest::collection::vec("[a-zé.!?]{1,12}|\n|\n\n|```", 0..400),
            chars in 16usize..300,
            lines in 3usize..30,
        ) {
            let text = words.join(" ");
            let l = Limits { chars, lines };
            let chunks = chunk(&text, l);
            for c in &chunks {
                proptest::prop_assert!(c.chars().count() <= chars, "{} > {chars}: {c:?}", c.chars().count());
                proptest::prop_assert!(c.lines().count() <= lines, "{} lines > {lines}: {c:?}", c.lines().count());
            }
            // Fences may be closed and reopened: compare without them.
            let squash = |s: &str| s.replace('`', "").split_whitespace().collect::<String>();
            proptest::prop_assert_eq!(squash(&chunks.concat()), squash(&text));
        }
    }
}
