//! A price file is merged or refused with an error naming the file, never a panic or a hang,
//! whatever its text (proptest, bounded in cases so the test command stays fast; re-run with
//! `PROPTEST_CASES=100000` for a longer search).

use flujo_pricing::PriceTable;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn any_price_file_text_is_merged_or_refused_with_its_line(
        text in "(\\[\\[model\\]\\]\\n|name = \"[a-z0-9-]{0,8}\"\\n|(input|output|cached_input|cache_write) = -?[0-9]{0,12}(\\.[0-9]{0,9})?\\n|effective = [0-9-]{0,12}\\n|version = \"[a-z0-9]{0,70}\"\\n|\\PC{0,10}\\n){0,12}",
    ) {
        let mut table = PriceTable::empty();
        if let Err(error) = table.merge_toml(&text, "fuzzed.toml") {
            prop_assert!(error.to_string().contains("fuzzed.toml"), "{error}");
        }
    }
}
