//! E-mail rules of the census: syntax, institutional domain, personal (not role) mailbox.

/// Local parts that name an office or a function, not a person. A local part is a role mailbox when
/// its first word (split on `.`, `_`, `-`, `+`; trailing digits dropped) or the whole local part
/// (separators removed) is one of these.
pub const ROLE_MAILBOXES: &[&str] = &[
    "abuse",
    "admin",
    "administrator",
    "amministrazione",
    "anagrafe",
    "anagrafi",
    "archivio",
    "assistenza",
    "comune",
    "contatti",
    "contact",
    "demografici",
    "direzione",
    "elettorale",
    "helpdesk",
    "hostmaster",
    "info",
    "informazioni",
    "mailer-daemon",
    "municipio",
    "noreply",
    "pec",
    "personale",
    "postmaster",
    "prefetto",
    "prefettura",
    "protocollo",
    "ragioneria",
    "segreteria",
    "servizi",
    "sindaco",
    "sportello",
    "statocivile",
    "support",
    "supporto",
    "tributi",
    "ufficio",
    "urp",
    "vicesindaco",
    "webmaster",
];

/// Prefixes that make a local part a role mailbox wherever it continues (`ufficioanagrafe`,
/// `servizi.demografici`, `segreteriasindaco`, `no-reply`, …), checked on the local part with the
/// separators removed. None of them starts a plausible Italian name or surname.
pub const ROLE_PREFIXES: &[&str] = &[
    "anagraf",
    "demografic",
    "donotreply",
    "elettoral",
    "noreply",
    "postmaster",
    "protocoll",
    "segreteri",
    "servizi",
    "statocivil",
    "ufficio",
    "webmaster",
];

/// Public webmail and certified-mail (PEC) providers: never the institutional domain of an entity.
pub const NON_INSTITUTIONAL_DOMAINS: &[&str] = &[
    "alice.it",
    "arubapec.it",
    "email.it",
    "fastwebnet.it",
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "hotmail.it",
    "icloud.com",
    "legalmail.it",
    "libero.it",
    "live.com",
    "live.it",
    "outlook.com",
    "outlook.it",
    "pec.it",
    "postecert.it",
    "tim.it",
    "tin.it",
    "tiscali.it",
    "virgilio.it",
    "yahoo.com",
    "yahoo.it",
];

/// A syntactically valid domain name (lower-cased): at least two labels of letters, digits and
/// inner hyphens, an alphabetic top-level label.
pub fn normalize_domain(domain: &str) -> Result<String, String> {
    let d = domain.trim().trim_start_matches('@').to_ascii_lowercase();
    if d.is_empty() {
        return Err("empty domain".into());
    }
    if d.len() > 253 {
        return Err(format!("domain {d:?} is longer than 253 characters"));
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "domain {d:?} needs at least two labels (like comune.example.it)"
        ));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("domain {d:?} has an invalid label {label:?}"));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.len() < 2 || !tld.bytes().all(|c| c.is_ascii_lowercase()) {
        return Err(format!(
            "domain {d:?} does not end in an alphabetic top-level domain"
        ));
    }
    Ok(d)
}

/// Whether a (normalized) domain can't be an entity's institutional domain: a public webmail or
/// PEC provider (or one of its subdomains), or a certified-mail host (`pec.` / `postacert.` label).
pub fn non_institutional(domain: &str) -> Option<&'static str> {
    for provider in NON_INSTITUTIONAL_DOMAINS {
        if domain == *provider || domain.ends_with(&format!(".{provider}")) {
            return Some("a public or certified-mail (PEC) provider");
        }
    }
    if domain
        .split('.')
        .any(|l| l == "pec" || l == "postacert" || l == "cert")
    {
        return Some("a certified-mail (PEC) domain, which can't receive ordinary e-mail");
    }
    None
}

/// Splits and checks an address; returns `(normalized address, local part, domain)`, all lower case.
pub fn parse(address: &str) -> Result<(String, String, String), String> {
    let a = address.trim();
    if a.chars().any(char::is_whitespace) {
        return Err(format!("{a:?} contains spaces"));
    }
    let Some((local, domain)) = a.rsplit_once('@') else {
        return Err(format!("{a:?} has no @"));
    };
    if local.contains('@') {
        return Err(format!("{a:?} has more than one @"));
    }
    if local.is_empty() || local.len() > 64 {
        return Err(format!("{a:?}: the part before @ must be 1-64 characters"));
    }
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-.";
    if !local
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(&c))
    {
        return Err(format!(
            "{a:?}: the part before @ has characters not allowed in an address"
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(format!("{a:?}: misplaced dot before @"));
    }
    let domain = normalize_domain(domain).map_err(|e| format!("{a:?}: {e}"))?;
    let local = local.to_ascii_lowercase();
    Ok((format!("{local}@{domain}"), local, domain))
}

/// Whether a (lower-case) local part is a role mailbox; returns the matching list entry.
pub fn role_mailbox(local: &str) -> Option<&'static str> {
    let is_sep = |c: char| matches!(c, '.' | '_' | '-' | '+');
    let first = local
        .split(is_sep)
        .next()
        .unwrap_or_default()
        .trim_end_matches(|c: char| c.is_ascii_digit());
    let compact: String = local.chars().filter(|&c| !is_sep(c)).collect();
    let compact_trimmed = compact.trim_end_matches(|c: char| c.is_ascii_digit());
    if let Some(role) = ROLE_MAILBOXES
        .iter()
        .find(|r| **r == first || **r == compact_trimmed || **r == local)
    {
        return Some(role);
    }
    ROLE_PREFIXES
        .iter()
        .find(|p| compact.starts_with(**p))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        assert_eq!(
            parse(" Mario.Rossi@Comune.Frascati.RM.it ").unwrap().0,
            "mario.rossi@comune.frascati.rm.it"
        );
        for bad in [
            "",
            "mario",
            "@comune.it",
            "mario@",
            "mario@@comune.it",
            "ma rio@comune.it",
            "mario@comune",
            "mario@comune..it",
            "mario@-comune.it",
            "mario@comune.i",
            "mario@comune.123",
            ".mario@comune.it",
            "mario.@comune.it",
            "ma..rio@comune.it",
            "ma(rio@comune.it",
            "màrio@comune.it",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles() {
        for role in [
            "info",
            "info2",
            "protocollo",
            "protocollo.generale",
            "segreteria",
            "segreteria-sindaco",
            "anagrafe",
            "ufficio.anagrafe",
            "ufficioanagrafe",
            "ufficio_tecnico",
            "pec",
            "postmaster",
            "admin",
            "noreply",
            "no-reply",
            "do-not-reply",
            "sindaco",
            "comune",
            "servizidemografici",
            "servizi.demografici",
            "demografici",
            "statocivile",
            "stato.civile",
            "urp",
        ] {
            assert!(role_mailbox(role).is_some(), "{role:?} not a role");
        }
        for person in [
            "mario.rossi",
            "m.rossi",
            "giulia.comunello",
            "anna.pecoraro",
            "luca.info",
            "sindacati.p",
            "francesco.serviziale",
            "pecorari.a",
            "adminini.g",
        ] {
            assert!(
                role_mailbox(person).is_none(),
                "{person:?} taken for a role"
            );
        }
    }

    #[test]
    fn institutional_domains() {
        assert!(non_institutional("gmail.com").is_some());
        assert!(non_institutional("pec.comune.frascati.rm.it").is_some());
        assert!(non_institutional("cert.legalmail.it").is_some());
        assert!(non_institutional("comune.frascati.rm.it").is_none());
        assert!(non_institutional("interno.it").is_none());
    }
}
