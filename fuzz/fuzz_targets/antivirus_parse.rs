//! What clamd answers (`VERSION`, `STATS`), what its config and log say, and what
//! `kesl-control` prints (status and events), as the anti-malware driver reads them: any bytes
//! must give a value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugins::antivirus::{clamav, kesl, kesl_events, logtail};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = clamav::parse_version(&text);
    let _ = clamav::parse_stats(&text);
    let _ = clamav::parse_ctime(&text);
    let _ = clamav::parse_cvd_header(data);
    let _ = clamav::ClamdConf::parse(&text).endpoint();
    for line in text.lines() {
        let _ = logtail::parse_found_line(line);
    }
    let info = kesl::parse_app_info(&text);
    let _ = kesl::status_from(&info, kesl::parse_task_state(&text));
    let _ = kesl::parse_date(&text);
    let _ = kesl_events::after(Some(kesl_events::EventCursor::default()), kesl_events::parse_events(&text));
});
