use super::*;
use proptest::prelude::*;

fn t(s: &str) -> Type {
    Type::parse(s).expect("valid type")
}

#[test]
fn type_strings_round_trip() {
    for s in [
        "(uuua(ayay))",
        "(a(say)a(sayay))",
        "(a{sv}aya(say)sstayay)",
        "(tuuuusa(ayay))",
        "mv",
        "()",
    ] {
        assert_eq!(t(s).to_string(), s);
    }
    for bad in ["", "(", "a", "{vs}", "(u", "uu", "z"] {
        assert!(Type::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn known_encodings() {
    // Encodings worked out from the examples of the GVariant specification.
    let cases: Vec<(Value, &[u8])> = vec![
        (Value::str("ab"), b"ab\0"),
        (
            Value::Tuple(vec![Value::Uint32(1), Value::str("x")]),
            b"\x01\0\0\0x\0",
        ),
        (
            Value::Tuple(vec![Value::str("x"), Value::Uint32(1)]),
            b"x\0\0\0\x01\0\0\0\x02",
        ),
        (
            Value::Array(Type::String, vec![Value::str("a"), Value::str("bc")]),
            b"a\0bc\0\x02\x05",
        ),
        (Value::Variant(Box::new(Value::Uint32(7))), b"\x07\0\0\0\0u"),
        (Value::Tuple(vec![]), b"\0"),
        (Value::Array(Type::String, vec![]), b""),
        (
            Value::Maybe(Type::String, Some(Box::new(Value::str("a")))),
            b"a\0\0",
        ),
    ];
    for (v, bytes) in cases {
        assert_eq!(v.to_bytes(), bytes, "{v:?}");
        assert_eq!(Value::from_bytes(&v.type_of(), bytes).as_ref(), Ok(&v));
    }
}

#[test]
fn refuses_non_normal_and_garbage() {
    let ty = t("(a(say)a(sayay))");
    for bad in [&b"\xff\xff\xff"[..], b"\x00\x05", b"abc"] {
        assert!(Value::from_bytes(&ty, bad).is_err());
    }
    // Non-zero padding is not normal form.
    assert!(Value::from_bytes(&t("(yu)"), b"\x01\x01\0\0\x02\0\0\0").is_err());
    assert!(Value::from_bytes(&t("b"), b"\x02").is_err());
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<u8>().prop_map(Value::Byte),
        any::<u16>().prop_map(Value::Uint16),
        any::<u32>().prop_map(Value::Uint32),
        any::<u64>().prop_map(Value::Uint64),
        "[a-z\u{e9}]{0,8}".prop_map(Value::str),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            inner.clone().prop_map(|v| Value::Variant(Box::new(v))),
            proptest::collection::vec("[a-z]{0,300}".prop_map(Value::str), 0..4)
                .prop_map(|v| Value::Array(Type::String, v)),
            (inner.clone(), inner).prop_map(|(a, b)| Value::Array(
                Type::Variant,
                vec![Value::Variant(Box::new(a)), Value::Variant(Box::new(b))]
            )),
        ]
    })
}

proptest! {
    #[test]
    fn round_trip(v in arb_value()) {
        let bytes = v.to_bytes();
        let back = Value::from_bytes(&v.type_of(), &bytes).expect("parses");
        prop_assert_eq!(back, v);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        for ty in ["(a(say)a(sayay))", "(a{sv}aya(say)sstayay)", "(uuua(ayay))", "a{sv}"] {
            let _ = Value::from_bytes(&t(ty), &bytes);
        }
    }
}
