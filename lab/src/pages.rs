//! The lab's HTML: small, self-contained pages (no scripts, no external resources), every value
//! escaped. Element ids (`whoami-…`, `refusal-reason`, `card-…`) are stable for browser tests.

use personalization::registry::CardRow;
use personalization::workstation::WorkstationRow;

use crate::gate::{Operator, Refusal, Workstation};

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

const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}\
header{border-bottom:3px solid #0b5;margin-bottom:1em}h1{font-size:1.4em}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left}\
.refused{border:2px solid #c00;background:#fee;padding:1em}.ok{border:2px solid #0a5;background:#efe;padding:1em}\
form.inline{display:inline}button{margin:.1em}";

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — tessera login lab</title>\
         <style>{STYLE}</style></head><body><header><h1>tessera login lab · ANPR staging</h1></header>\
         <main><h2>{title}</h2>{body}</main></body></html>",
        title = escape(title)
    )
}

pub fn refusal(refusal: &Refusal) -> String {
    page(
        "Access refused",
        &format!(
            "<div class=\"refused\"><p id=\"refusal-reason\">{}</p><p><small>code <code id=\"refusal-code\">{}</code></small></p></div>\
             <p><a href=\"/login\">Back to the login page</a></p>",
            escape(&refusal.to_string()),
            refusal.code()
        ),
    )
}

pub fn login(workstation: &Workstation, card_login_url: &str) -> String {
    page(
        "Login",
        &format!(
            "<p class=\"ok\" id=\"workstation\">Workstation <b>{name}</b> of entity {entity} is certified.</p>\
             <p><a id=\"card-login\" href=\"{url}\">Log in with your smart card</a> (your browser asks for the card's PIN).</p>\
             <h3>No card at hand?</h3>\
             <form method=\"post\" action=\"/login/password\">\
             <label>Codice fiscale <input name=\"codice_fiscale\" autocomplete=\"username\"></label> \
             <label>Access password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label> \
             <button type=\"submit\">Log in</button></form>\
             <p><small>The access password is the envelope half followed by the e-mail half.</small></p>",
            name = escape(&workstation.name),
            entity = escape(&workstation.entity),
            url = escape(card_login_url),
        ),
    )
}

pub fn home(operator: &Operator, workstation: &str, method: &str) -> String {
    let profiles: Vec<&str> = operator.profiles.iter().map(|p| p.as_str()).collect();
    let console = if operator.is_security_officer() {
        "<p><a id=\"console-link\" href=\"/console\">Security console</a></p>"
    } else {
        ""
    };
    page(
        "Logged in",
        &format!(
            "<table id=\"whoami\">\
             <tr><th>Codice fiscale</th><td id=\"whoami-codice-fiscale\">{cf}</td></tr>\
             <tr><th>Name</th><td id=\"whoami-name\">{name}</td></tr>\
             <tr><th>Entity</th><td id=\"whoami-entity\">{entity} {entity_name}</td></tr>\
             <tr><th>Profiles</th><td id=\"whoami-profiles\">{profiles}</td></tr>\
             <tr><th>Card</th><td id=\"whoami-card\">{card}</td></tr>\
             <tr><th>Workstation</th><td id=\"whoami-workstation\">{workstation}</td></tr>\
             <tr><th>Logged in with</th><td id=\"whoami-method\">{method}</td></tr></table>\
             {console}<form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
            cf = escape(&operator.codice_fiscale),
            name = escape(&operator.name),
            entity = escape(&operator.entity),
            entity_name = escape(&operator.entity_name),
            profiles = escape(&profiles.join(", ")),
            card = escape(&operator.card_number),
            workstation = escape(workstation),
            method = escape(method),
        ),
    )
}

fn action(path: &str, card: &str, label: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{path}\"><input type=\"hidden\" name=\"card\" value=\"{card}\">\
         <button id=\"{id}-{card}\">{label}</button></form>",
        path = escape(path),
        card = escape(card),
        id = escape(path.trim_start_matches("/console/")),
        label = escape(label),
    )
}

pub fn console(
    operator: &Operator,
    cards: &[(CardRow, String)],
    workstations: &[WorkstationRow],
    notice: Option<&str>,
) -> String {
    let mut body = String::new();
    if let Some(notice) = notice {
        body.push_str(&format!(
            "<p class=\"ok\" id=\"notice\">{}</p>",
            escape(notice)
        ));
    }
    body.push_str(&format!(
        "<p>Entity {} {} — acting as {} ({}).</p><h3>Cards</h3><table id=\"cards\">\
         <tr><th>Card</th><th>Holder</th><th>Codice fiscale</th><th>State</th><th>Actions</th></tr>",
        escape(&operator.entity),
        escape(&operator.entity_name),
        escape(&operator.name),
        escape(&operator.codice_fiscale)
    ));
    for (card, state) in cards {
        let mut actions = String::new();
        match state.as_str() {
            "delivered" => actions.push_str(&action(
                "/console/register",
                &card.card_number,
                "Register delivery",
            )),
            "active" => {
                actions.push_str(&action(
                    "/console/resend",
                    &card.card_number,
                    "Re-send PIN/PUK",
                ));
                actions.push_str(&action(
                    "/console/replace",
                    &card.card_number,
                    "Request a new card",
                ));
            }
            "personalized" | "expired" => actions.push_str(&action(
                "/console/replace",
                &card.card_number,
                "Request a new card",
            )),
            _ => {}
        }
        body.push_str(&format!(
            "<tr id=\"card-{n}\"><td>{n}</td><td>{holder}</td><td>{cf}</td><td class=\"state\">{state}</td><td>{actions}</td></tr>",
            n = escape(&card.card_number),
            holder = escape(&card.holder),
            cf = escape(&card.codice_fiscale),
            state = escape(state),
        ));
    }
    body.push_str("</table><h3>Workstation certificates</h3><table id=\"workstations\"><tr><th>Name</th><th>Kind</th><th>State</th><th>Actions</th></tr>");
    for row in workstations {
        let actions = if row.state.as_str() == "active" {
            format!(
                "<a href=\"/console/workstations/download?name={n}\">Download</a> \
                 <form class=\"inline\" method=\"post\" action=\"/console/workstations/block\"><input type=\"hidden\" name=\"name\" value=\"{n}\"><button>Block</button></form>",
                n = escape(&row.name)
            )
        } else {
            String::new()
        };
        body.push_str(&format!(
            "<tr id=\"workstation-{n}\"><td>{n}</td><td>{kind}</td><td>{state}</td><td>{actions}</td></tr>",
            n = escape(&row.name),
            kind = escape(&row.kind),
            state = escape(row.state.as_str()),
        ));
    }
    body.push_str(
        "</table><form method=\"post\" action=\"/console/workstations/request\"><button id=\"request-workstation\">Request a workstation certificate</button></form>\
         <p><a href=\"/\">Back</a></p>",
    );
    page("Security console", &body)
}

pub fn download(name: &str, password: &str) -> String {
    page(
        "Workstation certificate",
        &format!(
            "<p>Certificate <b>{n}</b>: <a id=\"pkcs12\" href=\"/console/workstations/{n}.p12\">{n}.p12</a></p>\
             <p>Installation password: <code id=\"pkcs12-password\">{p}</code></p><p><a href=\"/console\">Back</a></p>",
            n = escape(name),
            p = escape(password)
        ),
    )
}

pub fn message(title: &str, text: &str) -> String {
    page(title, &format!("<p>{}</p>", escape(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        let shown = refusal(&Refusal::UnknownWorkstation(
            "<script>alert(1)</script>\"".into(),
        ));
        assert!(!shown.contains("<script>"));
        assert!(shown.contains("&lt;script&gt;"));
        assert!(shown.contains("unknown-workstation"));
    }
}
