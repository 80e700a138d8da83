//! Where agents may call: `DIAL_COUNTRIES`, ISO 3166-1 alpha-2 codes (`US,CA,GB`). A number
//! belongs to a country by its calling code, with two refinements:
//! - **The North American Numbering Plan (+1)** is shared by the US, Canada and twenty-odd
//!   Caribbean and Pacific countries and territories, several of them classic toll-fraud
//!   destinations (+1 876 Jamaica, +1 809 the Dominican Republic). A +1 number belongs to the
//!   country of its area code: each country but the US has its area codes listed below; the US
//!   has every other well-formed one. Toll-free codes (800, 833, ...) count as the US's and
//!   Canada's; 900 (premium rate), N11, and the carrier, personal and test codes are nobody's,
//!   so no list allows them.
//! - **Other calling codes shared by several countries** (+44: the UK, Guernsey, Jersey, the Isle
//!   of Man; +7: Russia and Kazakhstan; ...) are allowed as a whole, by their principal country
//!   only: `GB` allows every +44 number, and `JE` is refused as a setting, so that nobody believes
//!   they allowed Jersey alone.
//!
//! A calling code in no row (+870 Inmarsat, +881 satellite phones, +979 international premium
//! rate, ...) belongs to no country: no list allows it. Twilio's Geo Permissions are the second
//! fence (docs/SECURITY.md).

use std::collections::BTreeSet;
use std::fmt;

use super::PhoneNumber;

/// Area codes of the NANP countries other than the US.
const NANP: &[(&str, &[&str])] = &[
    (
        "CA",
        &[
            "204", "226", "236", "249", "250", "257", "263", "289", "306", "343", "354", "365", "367", "368", "382",
            "387", "403", "416", "418", "428", "431", "437", "438", "450", "460", "468", "474", "506", "514", "519",
            "537", "548", "568", "579", "581", "584", "587", "600", "604", "613", "622", "633", "639", "644", "647",
            "655", "672", "677", "683", "688", "705", "709", "742", "753", "778", "780", "782", "807", "819", "825",
            "867", "873", "879", "902", "905", "942",
        ],
    ),
    ("AG", &["268"]),
    ("AI", &["264"]),
    ("AS", &["684"]),
    ("BB", &["246"]),
    ("BM", &["441"]),
    ("BS", &["242"]),
    ("DM", &["767"]),
    ("DO", &["809", "829", "849"]),
    ("GD", &["473"]),
    ("GU", &["671"]),
    ("JM", &["658", "876"]),
    ("KN", &["869"]),
    ("KY", &["345"]),
    ("LC", &["758"]),
    ("MP", &["670"]),
    ("MS", &["664"]),
    ("PR", &["787", "939"]),
    ("SX", &["721"]),
    ("TC", &["649"]),
    ("TT", &["868"]),
    ("VC", &["784"]),
    ("VG", &["284"]),
    ("VI", &["340"]),
];

/// NANP toll-free codes: the US's and Canada's.
const NANP_TOLL_FREE: &[&str] = &["800", "833", "844", "855", "866", "877", "888"];

/// NANP codes that are no country's: premium rate (900), carrier and government services
/// (456, 700, 710, 950), personal communications (500 and its easily recognisable codes), test
/// codes (958, 959). N11 codes are service numbers and are refused by their shape.
const NANP_NOBODYS: &[&str] =
    &["456", "500", "533", "544", "566", "577", "588", "700", "710", "900", "950", "958", "959"];

/// Calling codes outside the NANP, each with its countries; the first is the code's principal,
/// the only one `DIAL_COUNTRIES` accepts for a shared code. A country with two codes has a row
/// for each (`SH`: +290 and +247).
const CODES: &[(&str, &[&str])] = &[
    ("20", &["EG"]),
    ("211", &["SS"]),
    ("212", &["MA", "EH"]),
    ("213", &["DZ"]),
    ("216", &["TN"]),
    ("218", &["LY"]),
    ("220", &["GM"]),
    ("221", &["SN"]),
    ("222", &["MR"]),
    ("223", &["ML"]),
    ("224", &["GN"]),
    ("225", &["CI"]),
    ("226", &["BF"]),
    ("227", &["NE"]),
    ("228", &["TG"]),
    ("229", &["BJ"]),
    ("230", &["MU"]),
    ("231", &["LR"]),
    ("232", &["SL"]),
    ("233", &["GH"]),
    ("234", &["NG"]),
    ("235", &["TD"]),
    ("236", &["CF"]),
    ("237", &["CM"]),
    ("238", &["CV"]),
    ("239", &["ST"]),
    ("240", &["GQ"]),
    ("241", &["GA"]),
    ("242", &["CG"]),
    ("243", &["CD"]),
    ("244", &["AO"]),
    ("245", &["GW"]),
    ("246", &["IO"]),
    ("247", &["SH"]),
    ("248", &["SC"]),
    ("249", &["SD"]),
    ("250", &["RW"]),
    ("251", &["ET"]),
    ("252", &["SO"]),
    ("253", &["DJ"]),
    ("254", &["KE"]),
    ("255", &["TZ"]),
    ("256", &["UG"]),
    ("257", &["BI"]),
    ("258", &["MZ"]),
    ("260", &["ZM"]),
    ("261", &["MG"]),
    ("262", &["RE", "YT"]),
    ("263", &["ZW"]),
    ("264", &["NA"]),
    ("265", &["MW"]),
    ("266", &["LS"]),
    ("267", &["BW"]),
    ("268", &["SZ"]),
    ("269", &["KM"]),
    ("27", &["ZA"]),
    ("290", &["SH"]),
    ("291", &["ER"]),
    ("297", &["AW"]),
    ("298", &["FO"]),
    ("299", &["GL"]),
    ("30", &["GR"]),
    ("31", &["NL"]),
    ("32", &["BE"]),
    ("33", &["FR"]),
    ("34", &["ES"]),
    ("350", &["GI"]),
    ("351", &["PT"]),
    ("352", &["LU"]),
    ("353", &["IE"]),
    ("354", &["IS"]),
    ("355", &["AL"]),
    ("356", &["MT"]),
    ("357", &["CY"]),
    ("358", &["FI", "AX"]),
    ("359", &["BG"]),
    ("36", &["HU"]),
    ("370", &["LT"]),
    ("371", &["LV"]),
    ("372", &["EE"]),
    ("373", &["MD"]),
    ("374", &["AM"]),
    ("375", &["BY"]),
    ("376", &["AD"]),
    ("377", &["MC"]),
    ("378", &["SM"]),
    ("380", &["UA"]),
    ("381", &["RS"]),
    ("382", &["ME"]),
    ("383", &["XK"]),
    ("385", &["HR"]),
    ("386", &["SI"]),
    ("387", &["BA"]),
    ("389", &["MK"]),
    ("39", &["IT", "VA"]),
    ("40", &["RO"]),
    ("41", &["CH"]),
    ("420", &["CZ"]),
    ("421", &["SK"]),
    ("423", &["LI"]),
    ("43", &["AT"]),
    ("44", &["GB", "GG", "IM", "JE"]),
    ("45", &["DK"]),
    ("46", &["SE"]),
    ("47", &["NO", "SJ"]),
    ("48", &["PL"]),
    ("49", &["DE"]),
    ("500", &["FK", "GS"]),
    ("501", &["BZ"]),
    ("502", &["GT"]),
    ("503", &["SV"]),
    ("504", &["HN"]),
    ("505", &["NI"]),
    ("506", &["CR"]),
    ("507", &["PA"]),
    ("508", &["PM"]),
    ("509", &["HT"]),
    ("51", &["PE"]),
    ("52", &["MX"]),
    ("53", &["CU"]),
    ("54", &["AR"]),
    ("55", &["BR"]),
    ("56", &["CL"]),
    ("57", &["CO"]),
    ("58", &["VE"]),
    ("590", &["GP", "BL", "MF"]),
    ("591", &["BO"]),
    ("592", &["GY"]),
    ("593", &["EC"]),
    ("594", &["GF"]),
    ("595", &["PY"]),
    ("596", &["MQ"]),
    ("597", &["SR"]),
    ("598", &["UY"]),
    ("599", &["CW", "BQ"]),
    ("60", &["MY"]),
    ("61", &["AU", "CX", "CC"]),
    ("62", &["ID"]),
    ("63", &["PH"]),
    ("64", &["NZ", "PN"]),
    ("65", &["SG"]),
    ("66", &["TH"]),
    ("670", &["TL"]),
    ("672", &["NF"]),
    ("673", &["BN"]),
    ("674", &["NR"]),
    ("675", &["PG"]),
    ("676", &["TO"]),
    ("677", &["SB"]),
    ("678", &["VU"]),
    ("679", &["FJ"]),
    ("680", &["PW"]),
    ("681", &["WF"]),
    ("682", &["CK"]),
    ("683", &["NU"]),
    ("685", &["WS"]),
    ("686", &["KI"]),
    ("687", &["NC"]),
    ("688", &["TV"]),
    ("689", &["PF"]),
    ("690", &["TK"]),
    ("691", &["FM"]),
    ("692", &["MH"]),
    ("7", &["RU", "KZ"]),
    ("81", &["JP"]),
    ("82", &["KR"]),
    ("84", &["VN"]),
    ("850", &["KP"]),
    ("852", &["HK"]),
    ("853", &["MO"]),
    ("855", &["KH"]),
    ("856", &["LA"]),
    ("86", &["CN"]),
    ("880", &["BD"]),
    ("886", &["TW"]),
    ("90", &["TR"]),
    ("91", &["IN"]),
    ("92", &["PK"]),
    ("93", &["AF"]),
    ("94", &["LK"]),
    ("95", &["MM"]),
    ("960", &["MV"]),
    ("961", &["LB"]),
    ("962", &["JO"]),
    ("963", &["SY"]),
    ("964", &["IQ"]),
    ("965", &["KW"]),
    ("966", &["SA"]),
    ("967", &["YE"]),
    ("968", &["OM"]),
    ("970", &["PS"]),
    ("971", &["AE"]),
    ("972", &["IL"]),
    ("973", &["BH"]),
    ("974", &["QA"]),
    ("975", &["BT"]),
    ("976", &["MN"]),
    ("977", &["NP"]),
    ("98", &["IR"]),
    ("992", &["TJ"]),
    ("993", &["TM"]),
    ("994", &["AZ"]),
    ("995", &["GE"]),
    ("996", &["KG"]),
    ("998", &["UZ"]),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDialCountries {
    #[error("must list ISO 3166-1 alpha-2 country codes separated by commas, such as US,CA,GB")]
    Malformed,
    #[error("{0} is not a country code Warmline knows (ISO 3166-1 alpha-2, such as US)")]
    Unknown(String),
    #[error("{country} shares +{code} with {principal}: list {principal}, which allows every +{code} number")]
    Shared { country: String, code: &'static str, principal: &'static str },
    #[error("the support number's country cannot be told from its calling code; set DIAL_COUNTRIES")]
    NoCountry,
}

/// The countries agents may call, checked when parsed: every entry is a country Warmline can
/// tell numbers of apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialCountries(BTreeSet<&'static str>);

impl DialCountries {
    /// `US, ca,GB`: case and spaces do not matter; an empty entry or list is malformed.
    pub fn parse(input: &str) -> Result<Self, InvalidDialCountries> {
        let mut countries = BTreeSet::new();
        for entry in input.split(',') {
            let entry = entry.trim().to_ascii_uppercase();
            if entry.len() != 2 || !entry.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(InvalidDialCountries::Malformed);
            }
            countries.insert(known(&entry)?);
        }
        Ok(Self(countries))
    }

    /// The support number's own country: the default.
    pub fn of_number(number: &PhoneNumber) -> Result<Self, InvalidDialCountries> {
        let owner = owners(number).first().copied().ok_or(InvalidDialCountries::NoCountry)?;
        Ok(Self([owner].into()))
    }

    /// Whether agents may call `number`.
    pub fn allows(&self, number: &PhoneNumber) -> bool {
        owners(number).iter().any(|country| self.0.contains(country))
    }

    /// The countries, in alphabetical order.
    pub fn countries(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for DialCountries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.countries().collect::<Vec<_>>().join(","))
    }
}

/// The table's own copy of `country`, if it may be listed.
fn known(country: &str) -> Result<&'static str, InvalidDialCountries> {
    if country == "US" {
        return Ok("US");
    }
    if let Some((listed, _)) = NANP.iter().find(|(listed, _)| *listed == country) {
        return Ok(listed);
    }
    for (code, countries) in CODES {
        match countries.iter().position(|listed| *listed == country) {
            Some(0) => return Ok(countries[0]),
            Some(_) => {
                return Err(InvalidDialCountries::Shared {
                    country: country.to_owned(),
                    code,
                    principal: countries[0],
                });
            }
            None => {}
        }
    }
    Err(InvalidDialCountries::Unknown(country.to_owned()))
}

/// The countries any of which allows `number`; none for a number that is no country's.
fn owners(number: &PhoneNumber) -> &'static [&'static str] {
    let digits = &number.as_str()[1..];
    if let Some(national) = digits.strip_prefix('1') {
        return nanp_owners(national);
    }
    // ITU calling codes are prefix-free: at most one of the first one, two, three digits is one.
    (1..=3)
        .filter_map(|len| digits.get(..len))
        .find_map(|prefix| CODES.iter().find(|(code, _)| *code == prefix))
        .map_or(&[], |(_, countries)| &countries[..1])
}

/// A NANP number's owners, from its ten national digits (area code first).
fn nanp_owners(national: &str) -> &'static [&'static str] {
    let Some(area) = national.get(..3).filter(|_| national.len() == 10) else { return &[] };
    let bytes = area.as_bytes();
    // An area code starts with 2 to 9; N11 codes are service numbers (911, 411...).
    if !(b'2'..=b'9').contains(&bytes[0]) || &bytes[1..] == b"11" || NANP_NOBODYS.contains(&area) {
        return &[];
    }
    if NANP_TOLL_FREE.contains(&area) {
        return &["US", "CA"];
    }
    NANP.iter().find(|(_, areas)| areas.contains(&area)).map_or(&["US"], |(country, _)| std::slice::from_ref(country))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> PhoneNumber {
        PhoneNumber::parse(text).unwrap()
    }

    fn allows(list: &str, text: &str) -> bool {
        DialCountries::parse(list).unwrap().allows(&number(text))
    }

    #[test]
    fn parses_a_list_of_countries_in_any_case_and_spacing() {
        assert_eq!(DialCountries::parse(" us, Ca ,gb").unwrap().to_string(), "CA,GB,US");
        assert_eq!(DialCountries::parse("DE").unwrap().to_string(), "DE");
        for bad in ["", "US,", "USA", "U1", "+1", "US;CA", "1"] {
            assert_eq!(DialCountries::parse(bad), Err(InvalidDialCountries::Malformed), "{bad:?}");
        }
        assert_eq!(DialCountries::parse("US,ZZ"), Err(InvalidDialCountries::Unknown("ZZ".into())));
        let shared = DialCountries::parse("JE").unwrap_err();
        assert_eq!(shared.to_string(), "JE shares +44 with GB: list GB, which allows every +44 number");
    }

    #[test]
    fn the_nanp_goes_by_area_code() {
        assert!(allows("US", "+12125550123"));
        assert!(allows("US", "+15551234567"), "the fictional 555 numbers of the tests are the US's");
        // Caribbean premium-rate favourites are not the US, whatever their +1.
        for caribbean in ["+18765550123", "+16585550123", "+18095550123", "+18295550123", "+12845550123"] {
            assert!(!allows("US,CA", caribbean), "{caribbean}");
        }
        assert!(allows("JM", "+18765550123"));
        assert!(allows("DO", "+18495550123"));
        assert!(!allows("US", "+14165550123"), "Toronto is Canada");
        assert!(allows("CA", "+14165550123"));
        assert!(!allows("CA", "+12125550123"));
        assert!(allows("PR", "+17875550123") && !allows("US", "+17875550123"));
    }

    #[test]
    fn nanp_special_codes_are_nobodys_and_toll_free_is_the_us_and_canadas() {
        let everyone = NANP.iter().map(|(country, _)| *country).chain(["US"]).collect::<Vec<_>>().join(",");
        for nobodys in ["+19005550123", "+15005550123", "+19115550123", "+14115550123", "+17005550123"] {
            assert!(!allows(&everyone, nobodys), "{nobodys}");
        }
        assert!(allows("US", "+18005550123") && allows("CA", "+18885550123") && !allows("JM", "+18005550123"));
        // A +1 number must have ten digits after the 1, and an area code starting with 2 to 9.
        for malformed in ["+1212555012", "+121255501234", "+11125550123", "+10125550123"] {
            assert!(!allows(&everyone, malformed), "{malformed}");
        }
    }

    #[test]
    fn other_codes_go_by_calling_code_and_shared_ones_as_a_whole() {
        assert!(allows("GB", "+442071838750"));
        assert!(allows("GB", "+447624123456"), "the Isle of Man shares +44: allowed as a whole, documented");
        assert!(!allows("US", "+442071838750"));
        assert!(allows("DE", "+4930123456") && !allows("DE", "+43123456"));
        assert!(allows("RU", "+77011234567"), "Kazakhstan shares +7 with Russia");
        assert!(allows("SH", "+2901234") && allows("SH", "+2471234"));
        assert!(allows("TL", "+6701234567") && !allows("MP", "+6701234567"), "+670 is not +1 670");
    }

    #[test]
    fn numbers_of_no_country_are_allowed_by_no_list() {
        let all = CODES.iter().map(|(_, countries)| countries[0]).chain(["US"]).collect::<Vec<_>>().join(",");
        for nobodys in ["+870123456789", "+881612345678", "+882123456789", "+979123456789", "+80012345678", "+2101234"]
        {
            assert!(!allows(&all, nobodys), "{nobodys}");
        }
    }

    #[test]
    fn the_default_is_the_support_numbers_country() {
        assert_eq!(DialCountries::of_number(&number("+15550000000")).unwrap().to_string(), "US");
        assert_eq!(DialCountries::of_number(&number("+14165550123")).unwrap().to_string(), "CA");
        assert_eq!(DialCountries::of_number(&number("+18005550123")).unwrap().to_string(), "US");
        assert_eq!(DialCountries::of_number(&number("+442071838750")).unwrap().to_string(), "GB");
        assert_eq!(DialCountries::of_number(&number("+19005550123")), Err(InvalidDialCountries::NoCountry));
    }

    #[test]
    fn the_table_is_consistent() {
        // Prefix-free codes, each listed once; no country both in the NANP and outside it.
        for (code, _) in CODES {
            assert_eq!(CODES.iter().filter(|(other, _)| other.starts_with(code)).count(), 1, "{code}");
            assert!(!code.starts_with('1'));
        }
        for (country, areas) in NANP {
            assert!(CODES.iter().all(|(_, countries)| !countries.contains(country)), "{country}");
            for area in *areas {
                assert_eq!(NANP.iter().filter(|(_, others)| others.contains(area)).count(), 1, "{area}");
                assert!(!NANP_TOLL_FREE.contains(area) && !NANP_NOBODYS.contains(area), "{area}");
            }
        }
    }
}
