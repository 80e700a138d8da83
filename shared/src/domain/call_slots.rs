//! How many browser calls one customer may have at once, and one source address: each holder
//! has a record of the calls that hold one of its slots. A slot is taken when a browser call
//! arrives, given back when the call ends, and lapses by itself after `BROWSER_CALL_SLOT_SECONDS`
//! if the end is never reported.
//!
//! A browser call reaches Warmline from Twilio, which does not say where the browser is; the
//! address is the one the customer's Access Token was fetched from, kept on the customer's
//! record by `POST /token` (`CallSlots::bound`).

use std::fmt;
use std::net::IpAddr;

use super::CallSid;

/// How long a call holds its slots unless its end is reported first: the longest a lost
/// `conference-end` keeps a slot taken.
pub const BROWSER_CALL_SLOT_SECONDS: i64 = 3600;

/// Where a request came from, as limits count it: an IPv4 address, or the /64 network of an IPv6
/// address (one subscriber's line, or even one host, commonly has a whole /64 to pick from).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceAddress(String);

impl SourceAddress {
    pub fn of(ip: IpAddr) -> Self {
        Self(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let [a, b, c, d, ..] = v6.segments();
                    format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
                }
            },
        })
    }

    pub fn parse(input: &str) -> Option<Self> {
        input.trim().parse().ok().map(Self::of)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whose slots: a browser customer's identity, or a source address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlotHolder {
    Customer(String),
    Address(SourceAddress),
}

impl SlotHolder {
    /// The holder's key: the identity itself, or the address (an identity is letters, digits and
    /// `_`; an address has dots or colons, so the two never meet).
    pub fn key(&self) -> &str {
        match self {
            Self::Customer(identity) => identity,
            Self::Address(address) => address.as_str(),
        }
    }
}

/// A holder's slots: the calls that hold one now, each until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSlots {
    pub holder: SlotHolder,
    /// A customer's: the address their token was fetched from, whose slots their calls take too.
    pub address: Option<SourceAddress>,
    pub calls: Vec<(CallSid, i64)>,
    /// When the record may go: nothing in it holds past this.
    pub expires_at: i64,
    /// The version read; 0 for a record not stored yet.
    pub version: u64,
}

impl CallSlots {
    /// No calls yet.
    pub fn new(holder: SlotHolder, now: i64) -> Self {
        Self { holder, address: None, calls: Vec::new(), expires_at: now, version: 0 }
    }

    /// A customer's record as their token is issued: where they fetched it from, kept while the
    /// token may still place a call (`until`).
    pub fn bound(identity: &str, address: Option<SourceAddress>, until: i64) -> Self {
        Self { address, expires_at: until, ..Self::new(SlotHolder::Customer(identity.to_owned()), until) }
    }

    /// Whether `call` holds a slot at `now`.
    pub fn holds(&self, call: &CallSid, now: i64) -> bool {
        self.calls.iter().any(|(held, until)| held == call && *until > now)
    }

    /// The calls holding a slot at `now`.
    pub fn taken(&self, now: i64) -> usize {
        self.calls.iter().filter(|(_, until)| *until > now).count()
    }

    /// `call` takes a slot until `until`, if one of `limit` is free at `now` (lapsed ones are
    /// free). `false`, and nothing changed, when all are taken by other calls.
    pub fn take(&mut self, call: &CallSid, limit: u32, now: i64, until: i64) -> bool {
        if self.holds(call, now) {
            return true;
        }
        if self.taken(now) >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return false;
        }
        self.calls.retain(|(held, until)| *until > now && held != call);
        self.calls.push((call.clone(), until));
        self.expires_at = self.expires_at.max(until);
        true
    }

    /// `call` gives its slot back; `false` when it held none.
    pub fn release(&mut self, call: &CallSid) -> bool {
        let before = self.calls.len();
        self.calls.retain(|(held, _)| held != call);
        self.calls.len() != before
    }

    /// `call` holds its slot until `until` instead, sooner or later; `false` when it holds none
    /// at `now`, or holds it until then already.
    pub fn hold_until(&mut self, call: &CallSid, now: i64, until: i64) -> bool {
        let Some(held) = self.calls.iter_mut().find(|(held, held_until)| held == call && *held_until > now) else {
            return false;
        };
        if held.1 == until {
            return false;
        }
        held.1 = until;
        self.expires_at = self.expires_at.max(until);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: u8) -> CallSid {
        CallSid::parse(&format!("CA{n:032x}")).unwrap()
    }

    #[test]
    fn addresses_count_ipv4_alone_and_ipv6_by_its_64() {
        assert_eq!(SourceAddress::parse("203.0.113.7").unwrap().as_str(), "203.0.113.7");
        let a = SourceAddress::parse("2001:db8:1:2:aaaa::1").unwrap();
        let b = SourceAddress::parse("2001:0db8:0001:0002:ffff:ffff:ffff:ffff").unwrap();
        assert_eq!((a.as_str(), &a), ("2001:db8:1:2::/64", &b));
        assert_ne!(a, SourceAddress::parse("2001:db8:1:3::1").unwrap());
        assert_eq!(SourceAddress::parse("::ffff:198.51.100.2").unwrap().as_str(), "198.51.100.2");
        for bad in ["", "localhost", "203.0.113", "1.2.3.4:80"] {
            assert_eq!(SourceAddress::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn takes_up_to_the_limit_and_again_once_freed_or_lapsed() {
        let mut slots = CallSlots::new(SlotHolder::Customer("customer_1".into()), 100);
        assert!(slots.take(&call(1), 2, 100, 200));
        assert!(slots.take(&call(1), 2, 101, 201), "the same call again: it holds one already");
        assert!(slots.take(&call(2), 2, 102, 202));
        assert!(!slots.take(&call(3), 2, 103, 203));
        assert_eq!((slots.taken(103), slots.expires_at), (2, 202));
        assert!(slots.release(&call(1)) && !slots.release(&call(1)));
        assert!(slots.take(&call(3), 2, 104, 204));
        assert!(!slots.take(&call(4), 2, 105, 205));
        assert!(slots.take(&call(4), 2, 202, 302), "call 2's slot lapsed at 202");
        assert_eq!(slots.calls, [(call(3), 204), (call(4), 302)]);
        assert!(!slots.holds(&call(2), 202));
    }

    #[test]
    fn a_held_slot_may_be_held_for_less_or_longer() {
        let mut slots = CallSlots::new(SlotHolder::Customer("customer_1".into()), 100);
        assert!(slots.take(&call(1), 2, 100, 3700));
        assert!(slots.hold_until(&call(1), 110, 400), "sooner");
        assert!(!slots.hold_until(&call(1), 120, 400), "until then already");
        assert!(!slots.hold_until(&call(2), 120, 400), "a call holding no slot");
        assert!(!slots.holds(&call(1), 400));
        assert!(slots.hold_until(&call(1), 300, 3900), "later again");
        assert_eq!((slots.calls.as_slice(), slots.expires_at), ([(call(1), 3900)].as_slice(), 3900));
        assert!(!slots.hold_until(&call(1), 3900, 5000), "lapsed: nothing to hold");
    }
}
