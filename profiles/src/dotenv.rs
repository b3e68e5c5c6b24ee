//! `.env` files: `KEY=value` lines, as OpenClaw reads `$OPENCLAW_STATE_DIR/.env`.

/// Parses the `KEY=value` lines of a `.env` file (comments, blanks and
/// `export ` prefixes allowed; surrounding quotes removed).
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_lines() {
        let parsed = super::parse_dotenv("# c\nexport A=1\nB=\"two words\"\nbad line\n C = 3 \n");
        let want: Vec<(String, String)> = vec![
            ("A".into(), "1".into()),
            ("B".into(), "two words".into()),
            ("C".into(), "3".into()),
        ];
        assert_eq!(parsed, want);
    }
}
