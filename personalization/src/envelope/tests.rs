use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::*;

fn content() -> EnvelopeContent {
    EnvelopeContent {
        card_number: "0580910000042".into(),
        codice_fiscale: "RSSMRA80A01H501U".into(),
        holder_name: "Rossi Mario Nicolò".into(),
        entities: vec!["Comune di Roma".into(), "Comune di Fiumicino".into()],
        expiry: "2031-03-10".into(),
        card_file: "cards/0580910000042.card".into(),
        pin_first_half: "4821".into(),
        puk_first_half: "7305".into(),
        password_first_half: "kXr7pQ".into(),
    }
}

/// Runs a poppler tool, failing with a clear message if poppler-utils is not installed.
fn poppler(tool: &str, args: &[&str]) -> std::process::Output {
    match Command::new(tool).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "`{tool}` is needed by this test: install the Debian package poppler-utils \
             (apt-get install poppler-utils) ({e})"
        ),
    }
}

#[test]
fn manifest_has_the_exact_field_names() {
    let json = content().manifest_json();
    assert!(json.contains('\n'), "pretty printed");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let object = value.as_object().unwrap();
    for (field, expected) in [
        ("card_number", "0580910000042"),
        ("codice_fiscale", "RSSMRA80A01H501U"),
        ("card_file", "cards/0580910000042.card"),
        ("pin_first_half", "4821"),
        ("puk_first_half", "7305"),
        ("password_first_half", "kXr7pQ"),
        ("holder_name", "Rossi Mario Nicolò"),
        ("expiry", "2031-03-10"),
    ] {
        assert_eq!(object[field], expected, "{field}");
    }
    assert_eq!(
        object["entities"],
        serde_json::json!(["Comune di Roma", "Comune di Fiumicino"])
    );
    let back: EnvelopeContent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, content());
}

#[test]
fn debug_hides_the_halves() {
    let shown = format!("{:?}", content());
    assert!(shown.contains("0580910000042"));
    assert!(!shown.contains("4821") && !shown.contains("7305") && !shown.contains("kXr7pQ"));
}

#[test]
fn rejects_unsafe_fields() {
    let mut bad = content();
    bad.card_number = "../etc/passwd".into();
    assert!(matches!(
        render_pdf(&bad),
        Err(EnvelopeError::InvalidField {
            field: "card_number",
            ..
        })
    ));
    let mut bad = content();
    bad.holder_name = "Rossi\nMario".into();
    assert!(render_pdf(&bad).is_err());
    let mut bad = content();
    bad.pin_first_half = String::new();
    assert!(render_pdf(&bad).is_err());
}

#[test]
fn pdf_holds_the_first_halves_and_instructions() {
    let pdf = render_pdf(&content()).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = poppler("pdftotext", &["-layout", path.to_str().unwrap(), "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        TITLE,
        "0580910000042",
        "Rossi Mario Nicolò",
        "RSSMRA80A01H501U",
        "2031-03-10",
        "4821",
        "7305",
        "kXr7pQ",
        "PIN - prima metà / first half",
        "PUK - prima metà / first half",
        "Password - prima metà / first half",
        "Comune di Roma, Comune di Fiumicino",
        "arrive by e-mail",
        "registered",
        "arriva per e-mail",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn write_is_0600_and_atomic_and_renders_to_png() {
    let dir = tempfile::tempdir().unwrap();
    let envelopes = dir.path().join("envelopes");
    let (pdf, json) = write(&envelopes, &content()).unwrap();
    assert_eq!(pdf, envelopes.join("0580910000042.pdf"));
    assert_eq!(json, envelopes.join("0580910000042.json"));
    for path in [&pdf, &json] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    // Rewriting replaces both files and leaves no temporary files behind.
    let mut changed = content();
    changed.pin_first_half = "9999".into();
    write(&envelopes, &changed).unwrap();
    let names: Vec<String> = std::fs::read_dir(&envelopes)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(manifest["pin_first_half"], "9999");

    // A raster to look at (kept if TESSERA_ENVELOPE_PNG names a directory).
    let png_dir = std::env::var_os("TESSERA_ENVELOPE_PNG")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf());
    let prefix = png_dir.join("envelope");
    let out = poppler(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "60",
            "-singlefile",
            pdf.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(png_dir.join("envelope.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}
