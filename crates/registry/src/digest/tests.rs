#![allow(clippy::unwrap_used)]

use super::*;
use futures::{StreamExt, executor::block_on, stream};

const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

#[derive(Debug, PartialEq)]
enum TestError {
    Digest(DigestError),
    Inner(&'static str),
}

impl From<DigestError> for TestError {
    fn from(e: DigestError) -> Self {
        TestError::Digest(e)
    }
}

fn run(
    chunks: &[&'static [u8]],
    expected: &str,
    size: Option<u64>,
) -> Vec<Result<Bytes, TestError>> {
    let inner = stream::iter(
        chunks
            .iter()
            .map(|c| Ok::<_, TestError>(Bytes::from_static(c)))
            .collect::<Vec<_>>(),
    );
    block_on(verify_stream(inner, Digest::parse(expected).unwrap(), size).collect())
}

#[test]
fn parse_accepts_canonical_digests() {
    let d = Digest::parse(HELLO).unwrap();
    assert_eq!(d.as_str(), HELLO);
    assert_eq!(d.algorithm(), "sha256");
    assert_eq!(d.hex(), &HELLO[7..]);
    assert_eq!(d.tag_schema(), format!("sha256-{}", &HELLO[7..]));
    assert_eq!(d.to_string(), HELLO);
    assert_eq!(format!("{d:?}"), format!("Digest({HELLO:?})"));
    assert_eq!(HELLO.parse::<Digest>().unwrap(), d);
}

#[test]
fn parse_errors() {
    let hex = &HELLO[7..];
    let upper = format!("sha256:{}", hex.to_uppercase());
    let bad_char = format!("sha256:{}g", &hex[..63]);
    let short = format!("sha256:{}", &hex[..63]);
    let long = format!("sha256:{hex}0");
    let sha512 = format!("sha512:{hex}{hex}");
    let cases: Vec<(&str, DigestError)> = vec![
        ("", DigestError::MissingAlgorithm { input: "".into() }),
        (hex, DigestError::MissingAlgorithm { input: hex.into() }),
        (
            ":abc",
            DigestError::MissingAlgorithm {
                input: ":abc".into(),
            },
        ),
        (
            &sha512,
            DigestError::UnsupportedAlgorithm {
                input: sha512.clone(),
                algorithm: "sha512".into(),
            },
        ),
        (
            "SHA256:abc",
            DigestError::UnsupportedAlgorithm {
                input: "SHA256:abc".into(),
                algorithm: "SHA256".into(),
            },
        ),
        (
            &short,
            DigestError::WrongLength {
                input: short.clone(),
                len: 63,
            },
        ),
        (
            &long,
            DigestError::WrongLength {
                input: long.clone(),
                len: 65,
            },
        ),
        (
            "sha256:",
            DigestError::WrongLength {
                input: "sha256:".into(),
                len: 0,
            },
        ),
        (
            &upper,
            DigestError::UppercaseHex {
                input: upper.clone(),
                position: 1,
            },
        ),
        (
            &bad_char,
            DigestError::InvalidHex {
                input: bad_char.clone(),
                character: 'g',
                position: 63,
            },
        ),
        (
            "sha256:é",
            DigestError::InvalidHex {
                input: "sha256:é".into(),
                character: 'é',
                position: 0,
            },
        ),
    ];
    for (input, want) in cases {
        let got = Digest::parse(input).unwrap_err();
        assert_eq!(got, want, "input {input:?}");
        assert!(
            got.to_string().contains(&format!("{input:?}")),
            "message should quote the input: {got}"
        );
    }
}

#[test]
fn sha256_of_known_values() {
    assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY);
    assert_eq!(Digest::sha256_of(b"hello").as_str(), HELLO);
}

#[test]
fn serde_round_trip_validates() {
    let d = Digest::parse(HELLO).unwrap();
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(json, format!("\"{HELLO}\""));
    assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    let err = serde_json::from_str::<Digest>("\"sha256:nope\"").unwrap_err();
    assert!(err.to_string().contains("sha256:nope"), "{err}");
}

#[test]
fn verifier_table() {
    let hello = Digest::parse(HELLO).unwrap();
    type Case = (
        &'static str,
        Vec<&'static [u8]>,
        Option<u64>,
        Result<(), DigestError>,
    );
    let cases: Vec<Case> = vec![
        ("whole", vec![b"hello"], Some(5), Ok(())),
        ("split", vec![b"he", b"", b"llo"], Some(5), Ok(())),
        ("no size", vec![b"hello"], None, Ok(())),
        (
            "short",
            vec![b"hell"],
            Some(5),
            Err(DigestError::SizeMismatch {
                digest: hello.clone(),
                expected: 5,
                actual: 4,
            }),
        ),
        (
            "corrupt",
            vec![b"hellO"],
            Some(5),
            Err(DigestError::Mismatch {
                expected: hello.clone(),
                actual: Digest::sha256_of(b"hellO"),
            }),
        ),
    ];
    for (name, chunks, size, want) in cases {
        let mut v = Verifier::new(hello.clone(), size);
        for c in &chunks {
            v.update(c).unwrap();
        }
        assert_eq!(v.finish(), want, "{name}");
    }
}

#[test]
fn verifier_rejects_excess_bytes_immediately() {
    let mut v = Verifier::new(Digest::parse(HELLO).unwrap(), Some(5));
    v.update(b"hel").unwrap();
    assert_eq!(v.bytes_seen(), 3);
    let err = v.update(b"lo!").unwrap_err();
    assert!(matches!(
        err,
        DigestError::SizeMismatch {
            expected: 5,
            actual: 6,
            ..
        }
    ));
}

#[test]
fn stream_passes_good_content_through() {
    let out = run(&[b"he", b"l", b"lo"], HELLO, Some(5));
    let chunks: Vec<Bytes> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(chunks, vec![&b"he"[..], b"l", b"lo"]);
}

#[test]
fn stream_withholds_last_chunk_on_corruption() {
    let out = run(&[b"he", b"l", b"lO"], HELLO, Some(5));
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].as_ref().unwrap(), &b"he"[..]);
    assert_eq!(out[1].as_ref().unwrap(), &b"l"[..]);
    assert!(matches!(
        out[2],
        Err(TestError::Digest(DigestError::Mismatch { .. }))
    ));
}

#[test]
fn stream_too_many_bytes() {
    let out = run(&[b"he", b"llo", b"!"], HELLO, Some(5));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap(), &b"he"[..]);
    assert!(matches!(
        out[1],
        Err(TestError::Digest(DigestError::SizeMismatch {
            actual: 6,
            ..
        }))
    ));
}

#[test]
fn stream_too_few_bytes() {
    let out = run(&[b"he", b"ll"], HELLO, Some(5));
    assert_eq!(out.len(), 2);
    assert!(matches!(
        out[1],
        Err(TestError::Digest(DigestError::SizeMismatch {
            expected: 5,
            actual: 4,
            ..
        }))
    ));
}

#[test]
fn stream_single_corrupt_chunk_yields_only_the_error() {
    let out = run(&[b"hellO"], HELLO, None);
    assert_eq!(out.len(), 1);
    assert!(out[0].is_err());
}

#[test]
fn stream_empty_blob() {
    assert!(run(&[], EMPTY, Some(0)).is_empty());
    let out = run(&[b""], EMPTY, Some(0));
    assert_eq!(out.len(), 1);
    assert!(out[0].as_ref().unwrap().is_empty());
    let out = run(&[], HELLO, Some(5));
    assert!(matches!(
        out[..],
        [Err(TestError::Digest(DigestError::SizeMismatch { .. }))]
    ));
}

#[test]
fn stream_passes_inner_errors_on_and_stops() {
    let inner = stream::iter(vec![
        Ok(Bytes::from_static(b"he")),
        Ok(Bytes::from_static(b"l")),
        Err(TestError::Inner("reset")),
        Ok(Bytes::from_static(b"lo")),
    ]);
    let mut s = verify_stream(inner, Digest::parse(HELLO).unwrap(), Some(5));
    let out: Vec<_> = block_on((&mut s).collect());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap(), &b"he"[..]);
    assert_eq!(out[1], Err(TestError::Inner("reset")));
    assert!(s.is_terminated());
}

#[test]
fn verify_stream_is_send_and_unpin() {
    fn check<T: Send + Unpin>(_: &T) {}
    let inner = stream::iter(Vec::<Result<Bytes, TestError>>::new());
    check(&verify_stream(inner, Digest::sha256_of(b""), None));
}

#[test]
fn incremental_hashing_matches_one_shot_and_known_vectors() {
    assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY);
    assert_eq!(Digest::sha256_of(b"hello").as_str(), HELLO);
    // Longer than a block and split at awkward places: the split must not matter.
    let data: Vec<u8> = (0..200_003u32).map(|i| (i % 253) as u8).collect();
    let mut hasher = Sha256::new();
    for chunk in data.chunks(4093) {
        hasher.update(chunk);
    }
    let forked = hasher.clone();
    assert_eq!(hasher.finish(), Digest::sha256_of(&data));
    assert_eq!(forked.finish(), Digest::sha256_of(&data));
    // FIPS 180-2's two-block example.
    assert_eq!(
        Digest::sha256_of(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").as_str(),
        "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
}
