//! The HTML report: one self-contained page (inline CSS, no scripts, nothing fetched) for people to read —
//! the card under test, a table per suite, and under each failing check its APDU exchange (secrets were
//! redacted when the transcript was written).

use std::fmt::Write as _;
use std::time::Duration;

use crate::identity::CardIdentity;
use crate::report::{Outcome, Report};

/// When and how long the run was.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub card: CardIdentity,
    /// When the run started, as the reader should see it (e.g. RFC 3339).
    pub started: String,
    pub duration: Duration,
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:70rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem}
.sub{color:#5b6475;margin-top:0}
dl.card{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;background:#f4f6fa;padding:1rem;border-radius:6px}
dl.card dt{font-weight:600} dl.card dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
.totals span{display:inline-block;margin-right:1rem;padding:.2rem .6rem;border-radius:4px;font-weight:600}
table{border-collapse:collapse;width:100%;margin-top:.5rem} th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #dde2ea;vertical-align:top}
th{background:#eef1f6} td.time{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.pass{background:#e3f4e8;color:#17633a} .fail{background:#fde4e4;color:#9b1c1c} .skip{background:#fff4d6;color:#7a5a00}
td.status{font-weight:700;width:4rem}
pre{background:#10151f;color:#e4e9f2;padding:.8rem;border-radius:6px;overflow-x:auto;font-size:.85rem;line-height:1.35}
.detail{margin:.3rem 0 1rem} .why{color:#9b1c1c;font-weight:600}
";

/// The whole page for these suites' reports.
pub fn html(reports: &[Report], run: &RunInfo) -> String {
    let (passed, failed, skipped) = reports.iter().fold((0, 0, 0), |(p, f, s), r| {
        (p + r.passed(), f + r.failed(), s + r.skipped())
    });
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>tessera conformance: {}</title><style>{STYLE}</style></head><body>\n",
        escape(&run.card.target)
    );
    let _ = writeln!(
        page,
        "<h1>Conformance report</h1><p class=\"sub\">started {} · ran {:.2?}</p>",
        escape(&run.started),
        run.duration
    );
    page.push_str("<dl class=\"card\">");
    definition(&mut page, "card", &run.card.target);
    let atr = if run.card.atr.is_empty() {
        "(not available)".to_owned()
    } else {
        apdu::hex_spaced(&run.card.atr)
    };
    definition(&mut page, "ATR", &atr);
    for (name, value) in &run.card.fields {
        definition(&mut page, name, value);
    }
    page.push_str("</dl>\n");
    let _ = writeln!(
        page,
        "<p class=\"totals\"><span class=\"pass\">{passed} passed</span><span class=\"fail\">{failed} failed</span>\
         <span class=\"skip\">{skipped} skipped</span></p>"
    );
    for report in reports {
        suite(&mut page, report);
    }
    page.push_str("</body></html>\n");
    page
}

fn definition(page: &mut String, name: &str, value: &str) {
    let _ = write!(page, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(value));
}

fn suite(page: &mut String, report: &Report) {
    let total: Duration = report.results.iter().map(|r| r.duration).sum();
    let _ = write!(
        page,
        "<h2>Suite {}</h2><p class=\"sub\">{} passed, {} failed, {} skipped · {:.2?}</p>\n\
         <table><thead><tr><th>result</th><th>check</th><th>what it checks</th><th>time</th></tr></thead><tbody>\n",
        escape(report.suite),
        report.passed(),
        report.failed(),
        report.skipped(),
        total
    );
    for result in &report.results {
        let (class, mark) = match &result.outcome {
            Outcome::Pass => ("pass", "PASS"),
            Outcome::Fail(_) => ("fail", "FAIL"),
            Outcome::Skip(_) => ("skip", "SKIP"),
        };
        let _ = write!(
            page,
            "<tr><td class=\"status {class}\">{mark}</td><td><code>{}</code></td><td>{}",
            escape(result.id),
            escape(result.description)
        );
        match &result.outcome {
            Outcome::Pass => {}
            Outcome::Skip(why) => {
                let _ = write!(page, "<div class=\"detail\">{}</div>", escape(why));
            }
            Outcome::Fail(why) => {
                let _ = write!(
                    page,
                    "<div class=\"detail\"><div class=\"why\">{}</div><pre>{}</pre></div>",
                    escape(why),
                    escape(&result.transcript.join("\n"))
                );
            }
        }
        let _ = writeln!(
            page,
            "</td><td class=\"time\">{:.1?}</td></tr>",
            result.duration
        );
    }
    page.push_str("</tbody></table>\n");
}

/// Text as HTML text or attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CheckResult;

    fn report() -> Report {
        Report {
            suite: "runtime",
            target: "in-process".into(),
            results: vec![
                CheckResult {
                    id: "runtime.ok",
                    description: "a check that passes",
                    outcome: Outcome::Pass,
                    duration: Duration::from_millis(2),
                    transcript: vec!["> 00 A4".into()],
                },
                CheckResult {
                    id: "runtime.bad",
                    description: "answers <script>alert(1)</script> & more",
                    outcome: Outcome::Fail("expected 90 00, card answered \"6F 00\"".into()),
                    duration: Duration::from_millis(3),
                    transcript: vec!["> 00 20 00 80 08 <redacted>".into(), "< 6F 00".into()],
                },
                CheckResult {
                    id: "runtime.skipped",
                    description: "needs the demo applet",
                    outcome: Outcome::Skip("no demo applet".into()),
                    duration: Duration::ZERO,
                    transcript: Vec::new(),
                },
            ],
        }
    }

    fn info() -> RunInfo {
        RunInfo {
            card: CardIdentity {
                target: "pcsc:Virtual PCD 00 00".into(),
                atr: vec![0x3B, 0x80, 0x01, 0x81],
                fields: vec![("serial".into(), "12345".into())],
            },
            started: "2030-01-01T00:00:00Z".into(),
            duration: Duration::from_millis(1234),
        }
    }

    #[test]
    fn the_page_is_escaped_and_shows_failures_with_their_exchange() {
        let page = html(&[report()], &info());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script>"), "unescaped markup");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(page.contains("&quot;6F 00&quot;"));
        assert!(page.contains("&gt; 00 20 00 80 08 &lt;redacted&gt;\n&lt; 6F 00"));
        assert!(
            !page.contains("&gt; 00 A4"),
            "passing checks show no transcript"
        );
        assert!(page.contains("3B 80 01 81") && page.contains("12345"));
        assert!(
            page.contains("1 passed") && page.contains("1 failed") && page.contains("1 skipped")
        );
        assert!(page.contains("2030-01-01T00:00:00Z"));
        assert!(!page.contains("http"), "self-contained: nothing fetched");
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
