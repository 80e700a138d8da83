//! TLS for every connection a function opens: Twilio's REST API (`twilio::rest`), DynamoDB and
//! Secrets Manager (`aws_http`). All of them trust Mozilla's root certificates compiled into the
//! binary (webpki-roots), never the CA store on disk: reading that store is most of a cold start
//! (Debian keeps a bundle and a directory of 292 files; Lambda's provided.al2023 one bundle whose
//! every certificate is parsed), while the compiled-in roots are ready-made trust anchors.
//!
//! Every endpoint we call chains to a root in Mozilla's list: Twilio's to public CAs, AWS's to
//! Amazon Trust Services (Amazon Root CA 1–4, and Starfield Services Root CA G2, which cross-signs
//! them for older clients). The tests below hold that list to those five roots, by public key.

use std::sync::Arc;

/// The roots every client trusts.
pub fn roots() -> rustls::RootCertStore {
    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

/// A client configuration trusting `roots`, with the aws-lc-rs provider that reqwest and the AWS
/// SDK already link and rustls's safe protocol versions (TLS 1.2 and 1.3).
pub fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// For tests: a TLS acceptor for `localhost` whose certificate is its own root (trusted by no
/// public list and no system store), and that certificate's DER.
#[cfg(test)]
pub(crate) fn self_signed_localhost() -> (tokio_rustls::TlsAcceptor, rustls::pki_types::CertificateDer<'static>) {
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert.der().clone())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// The SHA-256 of each root's DER SubjectPublicKeyInfo (its public-key pin), as computed from
    /// the certificates Amazon Trust Services publishes (whose own SHA-256 fingerprints are
    /// 8ECDE688…, 1BA5B2AA…, 18CE6CFE…, E35D2841… and 568D6905…):
    /// `openssl x509 -in Amazon_Root_CA_1.pem -pubkey -noout | openssl pkey -pubin -outform der | sha256sum`.
    const AMAZON_ROOTS: [(&str, &str); 5] = [
        ("Amazon Root CA 1", "fbe3018031f9586bcbf41727e417b7d1c45c2f47f93be372a17b96b50757d5a2"),
        ("Amazon Root CA 2", "7f4296fc5b6a4e3b35d3c369623e364ab1af381d8fa7121533c9d6c633ea2461"),
        ("Amazon Root CA 3", "36abc32656acfc645c61b71613c4bf21c787f5cabbee48348d58597803d7abc9"),
        ("Amazon Root CA 4", "f7ecded5c66047d28ed6466b543c40e0743abe81d109254dcf845d4c2c7853c5"),
        (
            "Starfield Services Root Certificate Authority - G2",
            "2b071c59a0a0ae76b0eadb2bad23bad4580b69c3601b630c2eaf0613afa83f92",
        ),
    ];

    /// A trust anchor keeps the contents of the SubjectPublicKeyInfo SEQUENCE; its pin is over
    /// the whole DER, tag and length included.
    fn spki_pin(anchor: &rustls::pki_types::TrustAnchor<'_>) -> String {
        let contents = anchor.subject_public_key_info.as_ref();
        let mut der = vec![0x30];
        match contents.len() {
            len @ 0..0x80 => der.push(len as u8),
            len @ 0x80..0x100 => der.extend([0x81, len as u8]),
            len => der.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        der.extend_from_slice(contents);
        Sha256::digest(&der).iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|window| window == needle)
    }

    #[test]
    fn the_roots_include_every_root_aws_endpoints_chain_to() {
        let roots = roots();
        for (name, pin) in AMAZON_ROOTS {
            let anchor = roots
                .roots
                .iter()
                .find(|anchor| spki_pin(anchor) == pin)
                .unwrap_or_else(|| panic!("{name} is not among the trusted roots"));
            assert!(contains(anchor.subject.as_ref(), name.as_bytes()), "{name}: the key is filed under another name");
        }
    }

    #[test]
    fn the_pins_are_computed_the_way_openssl_computes_them() {
        // Amazon Root CA 3 is an ECDSA P-256 key (a short SEQUENCE), Root CA 1 an RSA-2048 one
        // (a two-byte length): both encodings lead to the published pins above.
        let roots = roots();
        let pins: Vec<String> = roots.roots.iter().map(spki_pin).collect();
        assert!(pins.iter().any(|pin| pin == AMAZON_ROOTS[2].1));
        assert!(pins.iter().any(|pin| pin == AMAZON_ROOTS[0].1));
        assert!(roots.roots.len() > 100, "Mozilla's whole list, not a handful: {}", roots.roots.len());
    }
}
