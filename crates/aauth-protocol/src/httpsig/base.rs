//! `Signature-Input` and `Signature` (RFC 9421 §4.1, §4.2) and the signature
//! base (RFC 9421 §2.5), without AAuth rules.
//!
//! `@signature-params` is rebuilt by serialising the parsed inner list and its
//! parameters in the order received, through `sfv` (RFC 9421 §2.3,
//! profile: P-SIG-2). It is never rebuilt from a fixed parameter order.

use sfv::{BareItem, DictSerializer, InnerList, Integer, KeyRef, ListEntry, ListSerializer};

use super::components::{Component, serialize_item};
use super::request::{HeaderSource, Request};
use super::{HttpSigError, MAX_COMPONENTS, MAX_SIGNATURE_FIELD_LEN, sf};
use crate::b64;
use crate::error::echo;
use crate::ids::Label;

const SIGNATURE_INPUT: &str = "Signature-Input";
const SIGNATURE: &str = "Signature";

/// One parsed `Signature-Input` member: the label, the covered components and
/// the signature parameters, kept as received (RFC 9421 §4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureInput {
    label: Label,
    list: InnerList,
    components: Vec<Component>,
    created: Option<u64>,
    expires: Option<u64>,
    alg: Option<String>,
}

fn malformed(header: &'static str, reason: impl Into<String>) -> HttpSigError {
    HttpSigError::MalformedField {
        header,
        reason: reason.into(),
    }
}

fn label_from_key(header: &'static str, key: &str) -> Result<Label, HttpSigError> {
    Label::new(key).map_err(|e| malformed(header, format!("label: {e}")))
}

fn non_negative(name: &'static str, item: &BareItem) -> Result<u64, HttpSigError> {
    match item {
        BareItem::Integer(i) => {
            u64::try_from(i64::from(*i)).map_err(|_| HttpSigError::BadParameter(name))
        }
        _ => Err(HttpSigError::BadParameter(name)),
    }
}

impl SignatureInput {
    /// Parses a `Signature-Input` field value holding exactly one signature
    /// (E§10.1.1 step 4). Components outside the profile are refused
    /// (P-SIG-8), duplicates too (RFC 9421 §2.5).
    pub fn parse(field_value: &str) -> Result<Self, HttpSigError> {
        if field_value.len() > MAX_SIGNATURE_FIELD_LEN {
            return Err(HttpSigError::FieldTooLarge {
                header: SIGNATURE_INPUT,
                max: MAX_SIGNATURE_FIELD_LEN,
            });
        }
        let parsed = sf::parse_dictionary(field_value)
            .map_err(|e| malformed(SIGNATURE_INPUT, e.to_string()))?;
        // E§10.1.1 step 4: "verify it contains exactly one label Ls".
        // Counted on the wire: RFC 8941 collapses duplicate keys.
        let (key, entry) = match (parsed.members, parsed.dict.first()) {
            (1, Some(first)) => first,
            (count, _) => {
                return Err(HttpSigError::LabelCount {
                    header: SIGNATURE_INPUT,
                    count,
                });
            }
        };
        let label = label_from_key(SIGNATURE_INPUT, key.as_str())?;
        let ListEntry::InnerList(list) = entry else {
            return Err(malformed(
                SIGNATURE_INPUT,
                "the member is not an inner list of components",
            ));
        };
        if list.items.len() > MAX_COMPONENTS {
            return Err(HttpSigError::TooManyComponents {
                max: MAX_COMPONENTS,
            });
        }
        let mut components: Vec<Component> = Vec::with_capacity(list.items.len());
        for item in &list.items {
            let component = Component::from_item(item)?;
            // RFC 9421 §2.5: "If the component identifier (including its
            // parameters) has already been added to the signature base,
            // produce an error."
            if components.contains(&component) {
                return Err(HttpSigError::DuplicateComponent(echo(&serialize_item(
                    item,
                ))));
            }
            components.push(component);
        }
        // P-SIG-2: `@signature-params` is the parameters "in the order
        // received"; RFC 8941 keeps only the last of a repeated one, so a
        // repeat would change the bytes: refuse it.
        if parameters_on_the_wire(field_value) != list.params.len() {
            return Err(HttpSigError::DuplicateParameter);
        }
        let mut input = Self {
            label,
            list: list.clone(),
            components,
            created: None,
            expires: None,
            alg: None,
        };
        // RFC 9421 §2.3: the types of the registered parameters. `keyid`,
        // `nonce`, `tag` and unknown parameters play no role here (P-SIG-2)
        // but stay in the list, and so in `@signature-params`.
        for (name, value) in &list.params {
            match name.as_str() {
                "created" => input.created = Some(non_negative("created", value)?),
                "expires" => input.expires = Some(non_negative("expires", value)?),
                "alg" => match value {
                    BareItem::String(s) => input.alg = Some(s.as_str().to_owned()),
                    _ => return Err(HttpSigError::BadParameter("alg")),
                },
                _ => {}
            }
        }
        Ok(input)
    }

    /// The input our signers emit: `components` in the given order and the
    /// single parameter `;created=N` (profile: P-SIG-1a).
    pub fn new(
        label: Label,
        components: Vec<Component>,
        created: u64,
    ) -> Result<Self, HttpSigError> {
        let created_item =
            Integer::try_from(created).map_err(|_| HttpSigError::BadParameter("created"))?;
        let items = components
            .iter()
            .map(Component::to_item)
            .collect::<Result<Vec<_>, _>>()?;
        let mut list = InnerList::new(items);
        list.params.insert(
            KeyRef::constant("created").to_owned(),
            BareItem::Integer(created_item),
        );
        Ok(Self {
            label,
            list,
            components,
            created: Some(created),
            expires: None,
            alg: None,
        })
    }

    /// The signature label (Ls).
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// The covered components, in order.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// `created`, if present.
    pub fn created(&self) -> Option<u64> {
        self.created
    }

    /// `expires`, if present.
    pub fn expires(&self) -> Option<u64> {
        self.expires
    }

    /// The `alg` parameter as received, if present.
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// A parameter as received, by name (e.g. `keyid`, `nonce`, `tag`).
    pub fn parameter(&self, name: &str) -> Option<&BareItem> {
        self.list
            .params
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v)
    }

    /// The `@signature-params` value: the inner list and its parameters,
    /// serialised by RFC 8941 §4.1 in the order received (RFC 9421 §2.3).
    pub fn signature_params(&self) -> String {
        let mut ser = ListSerializer::new();
        {
            let mut inner = ser.inner_list();
            inner.items(&self.list.items);
            let _ = inner.finish().parameters(&self.list.params);
        }
        ser.finish().unwrap_or_default()
    }

    /// The `Signature-Input` field value for this signature.
    pub fn to_field_value(&self) -> Result<String, HttpSigError> {
        let key = KeyRef::from_str(self.label.as_str())
            .map_err(|e| malformed(SIGNATURE_INPUT, format!("label: {e}")))?;
        let mut ser = DictSerializer::new();
        {
            let mut inner = ser.inner_list(key);
            inner.items(&self.list.items);
            let _ = inner.finish().parameters(&self.list.params);
        }
        Ok(ser.finish().unwrap_or_default())
    }
}

/// Builds the signature base (RFC 9421 §2.5) for `input` over `request`:
/// one line per covered component, `"name": value`, then
/// `"@signature-params": …`, with no trailing newline.
pub fn build_signature_base<'a, H>(
    request: &Request<'a, H>,
    input: &SignatureInput,
) -> Result<String, HttpSigError>
where
    H: HeaderSource + ?Sized + 'a,
{
    let mut base = String::with_capacity(256);
    for (item, component) in input.list.items.iter().zip(&input.components) {
        let value = component.value(request)?;
        // §2.5 step 2.2: "the component identifier (including parameters)",
        // serialised as an sf-string item.
        base.push_str(&serialize_item(item));
        base.push_str(": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&input.signature_params());
    Ok(base)
}

/// One parsed `Signature` member: the label and the signature bytes
/// (RFC 9421 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureValue {
    label: Label,
    bytes: Vec<u8>,
}

impl SignatureValue {
    /// Parses a `Signature` field value holding exactly one signature
    /// (E§10.1.1 step 5). The value must be an RFC 8941 byte sequence; with
    /// `lenient_base64` a base64url and/or unpadded value is also accepted
    /// (profile: P-SIG-7).
    pub fn parse(field_value: &str, lenient_base64: bool) -> Result<Self, HttpSigError> {
        if field_value.len() > MAX_SIGNATURE_FIELD_LEN {
            return Err(HttpSigError::FieldTooLarge {
                header: SIGNATURE,
                max: MAX_SIGNATURE_FIELD_LEN,
            });
        }
        let parsed = match sf::parse_dictionary(field_value) {
            Ok(parsed) => parsed,
            Err(e) => {
                // A base64url value is not an sf byte sequence, so the whole
                // field fails to parse. Only a single `label=:…:` member is
                // retried, and only when it would decode leniently.
                return match lenient_member(field_value) {
                    Some(value) if lenient_base64 => Ok(value),
                    Some(_) => Err(HttpSigError::NonStandardBase64),
                    None => Err(malformed(SIGNATURE, e.to_string())),
                };
            }
        };
        // E§10.1.1 step 5: "verify it contains exactly one label".
        let (key, entry) = match (parsed.members, parsed.dict.first()) {
            (1, Some(first)) => first,
            (count, _) => {
                return Err(HttpSigError::LabelCount {
                    header: SIGNATURE,
                    count,
                });
            }
        };
        let label = label_from_key(SIGNATURE, key.as_str())?;
        match entry {
            ListEntry::Item(item) => match &item.bare_item {
                // profile: P-SIG-7 — strictly, the value is standard base64
                // *with* padding, although RFC 8941 §4.2.7 lets parsers (and
                // sfv) accept it without: missing padding needs the switch.
                BareItem::ByteSequence(bytes)
                    if !lenient_base64 && !is_canonical(field_value, &label, bytes) =>
                {
                    Err(HttpSigError::NonStandardBase64)
                }
                BareItem::ByteSequence(bytes) => Ok(Self {
                    label,
                    bytes: bytes.clone(),
                }),
                _ => Err(HttpSigError::BadSignatureEncoding),
            },
            ListEntry::InnerList(_) => Err(HttpSigError::BadSignatureEncoding),
        }
    }

    /// The signature label.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// The signature bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// How many parameters follow the inner list of the single member of
/// `field_value` as written: the `;` after its closing `)` that are outside
/// quoted strings. Only called on a value that parsed as one inner list.
fn parameters_on_the_wire(field_value: &str) -> usize {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    let mut after_list = false;
    let mut count = 0;
    for c in field_value.chars() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '(' => depth = depth.saturating_add(1),
            ')' => {
                depth = depth.saturating_sub(1);
                after_list = depth == 0;
            }
            ';' if after_list && depth == 0 => count += 1,
            _ => {}
        }
    }
    count
}

/// Whether the single member `label=:…:` of `field_value` carries exactly
/// the padded standard base64 of `bytes` (its parameters, if any, follow).
fn is_canonical(field_value: &str, label: &Label, bytes: &[u8]) -> bool {
    let canonical = format!(":{}:", b64::std_encode(bytes));
    field_value
        .trim_start_matches([' ', '\t'])
        .strip_prefix(label.as_str())
        .and_then(|rest| rest.strip_prefix('='))
        .is_some_and(|value| value.starts_with(&canonical))
}

/// The bounded fallback of P-SIG-7: exactly `label=:base64:` where the base64
/// may use either alphabet, with or without padding. Nothing else.
fn lenient_member(field_value: &str) -> Option<SignatureValue> {
    let text = field_value.trim_matches([' ', '\t']);
    let (key, rest) = text.split_once('=')?;
    let label = Label::new(key).ok()?;
    let encoded = rest.strip_prefix(':')?.strip_suffix(':')?;
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='))
    {
        return None;
    }
    let bytes = b64::lenient_decode(encoded).ok()?;
    Some(SignatureValue { label, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httpsig::FieldName;
    use proptest::prelude::*;

    const HEADERS: [(&str, &str); 2] = [("signature-key", "sig=hwk"), ("Date", "today")];

    fn request(target: &str) -> Request<'_, [(&str, &str); 2]> {
        Request {
            method: "GET",
            authority: "Example.COM:8443",
            target,
            headers: &HEADERS,
            body: None,
        }
    }

    #[test]
    fn rebuilds_signature_params_in_the_order_received() {
        // profile: P-SIG-2 — a non-`created` parameter first stays first.
        let input = SignatureInput::parse(
            r#"sig=("@method" "signature-key");keyid="x";created=1700000000;zz=?1"#,
        )
        .unwrap();
        assert_eq!(
            input.signature_params(),
            r#"("@method" "signature-key");keyid="x";created=1700000000;zz"#
        );
        let base = build_signature_base(&request("/"), &input).unwrap();
        assert_eq!(
            base,
            "\"@method\": GET\n\"signature-key\": sig=hwk\n\"@signature-params\": (\"@method\" \"signature-key\");keyid=\"x\";created=1700000000;zz"
        );
    }

    #[test]
    fn authority_is_normalised_to_lowercase() {
        let input = SignatureInput::parse(r#"sig=("@authority");created=1"#).unwrap();
        let base = build_signature_base(&request("/"), &input).unwrap();
        assert!(
            base.starts_with("\"@authority\": example.com:8443\n"),
            "{base}"
        );
    }

    #[test]
    fn empty_query_is_a_lone_question_mark() {
        // profile: P-SIG-1
        let input = SignatureInput::parse(r#"sig=("@path" "@query");created=1"#).unwrap();
        let base = build_signature_base(&request("/x?"), &input).unwrap();
        assert!(base.starts_with("\"@path\": /x\n\"@query\": ?\n"), "{base}");
    }

    #[test]
    fn query_without_question_mark_is_refused() {
        // profile: P-SIG-1
        let input = SignatureInput::parse(r#"sig=("@query");created=1"#).unwrap();
        assert_eq!(
            build_signature_base(&request("/x"), &input),
            Err(HttpSigError::QueryWithoutQuestionMark)
        );
    }

    #[test]
    fn an_absent_header_is_never_signed_as_empty() {
        let input = SignatureInput::parse(r#"sig=("content-type");created=1"#).unwrap();
        assert_eq!(
            build_signature_base(&request("/"), &input),
            Err(HttpSigError::MissingHeader("content-type".into()))
        );
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        let headers = [("x", "a\n\"@method\": POST")];
        let req = Request {
            method: "GET",
            authority: "a",
            target: "/",
            headers: &headers,
            body: None,
        };
        let input = SignatureInput::parse(r#"sig=("x");created=1"#).unwrap();
        assert_eq!(
            build_signature_base(&req, &input),
            Err(HttpSigError::BadHeaderValue("x".into()))
        );
    }

    #[test]
    fn exactly_one_label_is_counted_on_the_wire() {
        // E§10.1.1 step 4; RFC 8941 would silently keep the last duplicate.
        for (text, count) in [
            (r#"sig=("@method");created=1, sig=("@path");created=1"#, 2),
            (r#"a=("@method");created=1, b=("@path");created=1"#, 2),
            ("", 0),
        ] {
            assert_eq!(
                SignatureInput::parse(text),
                Err(HttpSigError::LabelCount {
                    header: "Signature-Input",
                    count
                }),
                "{text}"
            );
        }
        assert_eq!(
            SignatureValue::parse("sig=:AA==:, sig=:AA==:", false),
            Err(HttpSigError::LabelCount {
                header: "Signature",
                count: 2
            })
        );
    }

    #[test]
    fn duplicate_components_are_refused() {
        assert_eq!(
            SignatureInput::parse(r#"sig=("@method" "@method");created=1"#),
            Err(HttpSigError::DuplicateComponent("\"@method\"".into()))
        );
    }

    #[test]
    fn parameters_of_the_wrong_type_are_refused() {
        for (text, name) in [
            (r#"sig=();created="1""#, "created"),
            (r#"sig=();created=-1"#, "created"),
            (r#"sig=();created=1;expires=1.5"#, "expires"),
            (r#"sig=();created=1;alg=ed25519"#, "alg"),
        ] {
            assert_eq!(
                SignatureInput::parse(text),
                Err(HttpSigError::BadParameter(name)),
                "{text}"
            );
        }
    }

    #[test]
    fn member_must_be_an_inner_list() {
        assert!(matches!(
            SignatureInput::parse("sig=1"),
            Err(HttpSigError::MalformedField {
                header: "Signature-Input",
                ..
            })
        ));
    }

    #[test]
    fn too_many_components_are_refused() {
        let list: Vec<String> = (0..=MAX_COMPONENTS).map(|i| format!("\"h{i}\"")).collect();
        let text = format!("sig=({});created=1", list.join(" "));
        assert_eq!(
            SignatureInput::parse(&text),
            Err(HttpSigError::TooManyComponents {
                max: MAX_COMPONENTS
            })
        );
    }

    #[test]
    fn emitted_input_serialises_with_created_only() {
        // profile: P-SIG-1a
        let input = SignatureInput::new(
            Label::sig(),
            vec![
                Component::Method,
                Component::Field(FieldName::SIGNATURE_KEY),
            ],
            1730217600,
        )
        .unwrap();
        assert_eq!(
            input.to_field_value().unwrap(),
            r#"sig=("@method" "signature-key");created=1730217600"#
        );
        assert_eq!(
            SignatureInput::parse(&input.to_field_value().unwrap()).unwrap(),
            input
        );
    }

    #[test]
    fn repeated_signature_parameters_are_refused() {
        // profile: P-SIG-2 — RFC 8941 would keep the last `created`, and the
        // rebuilt @signature-params would no longer be the bytes received.
        let repeated = r#"sig=("@method");created=5;keyid="a;b";created=7"#;
        assert_eq!(
            SignatureInput::parse(repeated).unwrap_err(),
            HttpSigError::DuplicateParameter
        );
        let quoted = r#"sig=("@method" "x";y);created=5;keyid="a;b\";c""#;
        assert!(!matches!(
            SignatureInput::parse(quoted),
            Err(HttpSigError::DuplicateParameter)
        ));
        assert_eq!(parameters_on_the_wire(quoted), 2);
    }

    #[test]
    fn strict_signature_accepts_rfc8941_byte_sequences_only() {
        // profile: P-SIG-7 — base64url needs the lenient switch.
        let std = SignatureValue::parse("sig=:+/8=:", false).unwrap();
        assert_eq!(std.bytes(), [0xfb, 0xff]);
        assert_eq!(std.label().as_str(), "sig");
        // RFC 8941 §4.2.7 lets parsers accept missing padding; the profile
        // keeps that behind the switch.
        assert_eq!(
            SignatureValue::parse("sig=:+/8:", false),
            Err(HttpSigError::NonStandardBase64)
        );
        assert_eq!(
            SignatureValue::parse("sig=:+/8:", true).unwrap().bytes(),
            [0xfb, 0xff]
        );
        // The check is on the member's own value, not anywhere in the field.
        assert_eq!(
            SignatureValue::parse("sig=:+/8:;x=:+/8=:", false),
            Err(HttpSigError::NonStandardBase64)
        );
        assert!(SignatureValue::parse(" sig=:+/8=:;x=:AA==:", false).is_ok());
        assert_eq!(
            SignatureValue::parse("sig=:-_8:", false),
            Err(HttpSigError::NonStandardBase64)
        );
        assert_eq!(
            SignatureValue::parse("sig=:-_8=:", false),
            Err(HttpSigError::NonStandardBase64)
        );
    }

    #[test]
    fn lenient_signature_accepts_base64url_with_or_without_padding() {
        // profile: P-SIG-7
        for text in ["sig=:-_8:", "sig=:-_8=:", " sig=:+/8: ", "sig=:+/8=:"] {
            let value = SignatureValue::parse(text, true).unwrap();
            assert_eq!(value.bytes(), [0xfb, 0xff], "{text}");
        }
        // The fallback is bounded to one `label=:…:` member.
        for bad in [
            "sig=:-_8:, other=:AA==:",
            "sig=:-_8:;p=1",
            "Sig=:-_8:",
            "sig=-_8",
            "sig=:-+8:",
        ] {
            assert!(SignatureValue::parse(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn signature_member_must_be_a_byte_sequence() {
        for text in ["sig=\"AA==\"", "sig=(:AA==:)", "sig=1"] {
            assert_eq!(
                SignatureValue::parse(text, false),
                Err(HttpSigError::BadSignatureEncoding),
                "{text}"
            );
        }
    }

    #[test]
    fn oversized_signature_fields_are_refused_before_parsing() {
        let text = format!("sig=:{}:", "A".repeat(MAX_SIGNATURE_FIELD_LEN));
        assert_eq!(
            SignatureValue::parse(&text, true),
            Err(HttpSigError::FieldTooLarge {
                header: "Signature",
                max: MAX_SIGNATURE_FIELD_LEN
            })
        );
    }

    proptest! {
        #[test]
        fn arbitrary_signature_input_never_panics(text in ".{0,400}") {
            if let Ok(input) = SignatureInput::parse(&text) {
                let _ = build_signature_base(&request("/a?b"), &input);
                let _ = input.to_field_value();
            }
        }

        #[test]
        fn structured_signature_input_never_panics(
            label in "[a-z*][a-z0-9_.*-]{0,70}",
            items in proptest::collection::vec("\"[ -~]{0,12}\"(;[a-z]{1,3}(=[0-9]{1,3})?)?", 0..40),
            params in "(;[a-z]{1,8}=(-?[0-9]{1,16}|\"[a-z]{0,5}\"|[a-z]{1,4}|:[A-Za-z0-9+/]{0,8}={0,2}:))*",
        ) {
            let text = format!("{label}=({}){params}", items.join(" "));
            if let Ok(input) = SignatureInput::parse(&text) {
                let base = build_signature_base(&request("/a?b"), &input);
                if let Ok(base) = base {
                    prop_assert!(base.ends_with(&input.signature_params()));
                }
            }
        }

        #[test]
        fn arbitrary_signature_never_panics(text in ".{0,300}", lenient in any::<bool>()) {
            let _ = SignatureValue::parse(&text, lenient);
        }

        #[test]
        fn lenient_fallback_never_panics(text in "[a-z]{1,5}=:[A-Za-z0-9+/_=-]{0,100}:") {
            let _ = SignatureValue::parse(&text, true);
        }

        #[test]
        fn parsed_input_round_trips_through_its_field_value(
            created in 0u64..999_999_999_999_999,
            query in any::<bool>(),
        ) {
            let mut components = vec![Component::Method, Component::Authority, Component::Path];
            if query {
                components.push(Component::Query);
            }
            let input = SignatureInput::new(Label::sig(), components, created).unwrap();
            prop_assert_eq!(SignatureInput::parse(&input.to_field_value().unwrap()).unwrap(), input);
        }
    }
}
