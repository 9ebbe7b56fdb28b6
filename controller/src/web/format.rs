//! Dates and numbers as the console's readers write them: Vietnamese `26/11/2026 14:05`,
//! `1.234,5`; English in the British style, `26/11/2026 14:05`, `1,234.5`. Times are shown in
//! the province's zone (UTC+7, Indochina Time, no daylight saving).

use super::i18n::Lang;

/// The province's offset from UTC, in seconds.
const ICT_OFFSET_S: i32 = 7 * 3600;

fn separators(lang: Lang) -> (char, char) {
    match lang {
        Lang::Vi => ('.', ','),
        Lang::En => (',', '.'),
    }
}

/// `value` with `decimals` digits after the mark and thousands grouped, in `lang`'s style.
pub fn number(lang: Lang, value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "-".into();
    }
    let (group, mark) = separators(lang);
    let text = format!("{:.*}", decimals, value.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(group);
        }
        grouped.push(c);
    }
    // A value that rounds to zero is not shown as "-0".
    let negative = value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    let mut out = if negative { format!("-{grouped}") } else { grouped };
    if !frac.is_empty() {
        out.push(mark);
        out.push_str(frac);
    }
    out
}

/// An integer count, grouped.
pub fn count(lang: Lang, n: i64) -> String {
    number(lang, n as f64, 0)
}

/// A unix-millisecond time as `dd/mm/yyyy` in the province's zone.
pub fn date(_lang: Lang, ms: i64) -> String {
    let t = local(ms);
    format!("{:02}/{:02}/{:04}", t.day(), u8::from(t.month()), t.year())
}

/// A unix-millisecond time as `dd/mm/yyyy HH:MM` in the province's zone (both languages use
/// the 24-hour clock).
pub fn date_time(lang: Lang, ms: i64) -> String {
    let t = local(ms);
    format!("{} {:02}:{:02}", date(lang, ms), t.hour(), t.minute())
}

fn local(ms: i64) -> time::OffsetDateTime {
    let offset = time::UtcOffset::from_whole_seconds(ICT_OFFSET_S).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_each_locale() {
        for (lang, v, d, want) in [
            (Lang::Vi, 1234.5, 1, "1.234,5"),
            (Lang::En, 1234.5, 1, "1,234.5"),
            (Lang::Vi, 996555.0, 0, "996.555"),
            (Lang::En, 996555.0, 0, "996,555"),
            (Lang::Vi, 1234567.891, 2, "1.234.567,89"),
            (Lang::En, 0.26, 1, "0.3"),
            (Lang::Vi, 135.0, 0, "135"),
            (Lang::Vi, -1234.5, 1, "-1.234,5"),
            (Lang::En, -0.01, 1, "0.0"),
            (Lang::En, f64::NAN, 1, "-"),
        ] {
            assert_eq!(number(lang, v, d), want, "{lang:?} {v} {d}");
        }
        assert_eq!(count(Lang::Vi, 10825), "10.825");
        assert_eq!(count(Lang::En, 2753), "2,753");
    }

    #[test]
    fn dates_in_the_provinces_zone() {
        // 2026-11-26T10:00:00Z is 17:00 in Cà Mau.
        let ms = 1_795_687_200_000;
        assert_eq!(date(Lang::Vi, ms), "26/11/2026");
        assert_eq!(date(Lang::En, ms), "26/11/2026");
        assert_eq!(date_time(Lang::Vi, ms), "26/11/2026 17:00");
        // 2026-11-26T20:30:00Z is already the 27th there.
        assert_eq!(date_time(Lang::En, ms + 10 * 3_600_000 + 1_800_000), "27/11/2026 03:30");
    }
}
