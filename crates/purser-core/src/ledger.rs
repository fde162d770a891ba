//! The ledger's rules.
//!
//! Every movement of money is one immutable transfer of a positive amount from one
//! account to another of the same currency. An account's balance is what it has
//! received minus what it has sent, so the balances of one currency always sum to
//! zero: money is never created or destroyed, only moved (sources such as the
//! sandbox on-ramp run negative by what they issued).
//!
//! [`MemoryLedger`] applies transfers under these rules, with the bounds of
//! [`posting_bounds`]. It is the working state of every committed batch
//! ([`crate::batch`]), whose balances storage loads under lock, and the model that
//! property tests compare storage against. [`check_invariants`] audits a whole ledger.
#![warn(clippy::arithmetic_side_effects)]

use std::collections::{BTreeMap, BTreeSet};

use purser_types::{AccountId, AccountKind, Currency, Usdc};

/// Why a transfer cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Transfers move a positive amount.
    #[error("a transfer must move a positive amount")]
    ZeroAmount,
    /// The two sides of a transfer must differ.
    #[error("a transfer must join two different accounts")]
    SameAccount,
    /// Both accounts and the transfer must share one currency.
    #[error("a transfer must join accounts of its own currency")]
    CurrencyMismatch,
    /// The sending account would go below its floor.
    #[error("insufficient funds in {0}")]
    InsufficientFunds(AccountId),
    /// The receiving account would exceed the largest representable balance.
    #[error("balance of {0} would overflow")]
    BalanceOverflow(AccountId),
    /// An account the transfer names does not exist.
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
}

/// The lowest balance an account of this kind may reach.
pub const fn balance_floor(kind: AccountKind) -> i64 {
    if kind.may_go_negative() { -i64::MAX } else { 0 }
}

/// Checks a transfer's shape before any balance is read.
pub fn validate_transfer(
    from: AccountId,
    to: AccountId,
    amount: Usdc,
    currency: Currency,
) -> Result<(), LedgerError> {
    if amount.is_zero() {
        return Err(LedgerError::ZeroAmount);
    }
    if from == to {
        return Err(LedgerError::SameAccount);
    }
    if from.currency != currency || to.currency != currency {
        return Err(LedgerError::CurrencyMismatch);
    }
    Ok(())
}

/// The conditions under which moving `amount` keeps every rule: the sender's floor
/// and the receiver's ceiling, computed without overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostingBounds {
    /// The sender's balance must be at least this before the debit.
    pub from_min_balance: i64,
    /// The receiver's balance must be at most this before the credit.
    pub to_max_balance: i64,
}

/// The bounds for moving `amount` out of an account of `from_kind`.
///
/// Both bounds are exact and cannot overflow: `amount <= i64::MAX` by [`Usdc`]'s
/// invariant, so `floor + amount` lies in `[-i64::MAX + 1, i64::MAX]` and
/// `i64::MAX - amount` in `[0, i64::MAX]`.
pub fn posting_bounds(from_kind: AccountKind, amount: Usdc) -> PostingBounds {
    let amount = amount.atomic_i64();
    PostingBounds {
        from_min_balance: balance_floor(from_kind).saturating_add(amount),
        to_max_balance: i64::MAX.saturating_sub(amount),
    }
}

/// An in-memory ledger with the same rules as storage: the model for property tests
/// and the reference the storage suite is compared against.
#[derive(Debug, Clone, Default)]
pub struct MemoryLedger {
    balances: BTreeMap<AccountId, i64>,
}

impl MemoryLedger {
    /// Opens an account with a zero balance; opening twice is harmless.
    pub fn open(&mut self, account: AccountId) {
        self.balances.entry(account).or_insert(0);
    }

    /// Loads an account with the balance storage holds for it.
    pub fn insert(&mut self, account: AccountId, balance: i64) {
        self.balances.insert(account, balance);
    }

    /// Puts an account back as it was: `None` removes it.
    pub fn restore(&mut self, account: AccountId, balance: Option<i64>) {
        match balance {
            Some(balance) => self.balances.insert(account, balance),
            None => self.balances.remove(&account),
        };
    }

    /// The balance of an account, if it exists.
    pub fn balance(&self, account: AccountId) -> Option<i64> {
        self.balances.get(&account).copied()
    }

    /// Every account and its balance.
    pub fn balances(&self) -> impl Iterator<Item = (AccountId, i64)> + '_ {
        self.balances.iter().map(|(id, balance)| (*id, *balance))
    }

    /// Checks a transfer against every rule without applying it; returns the two
    /// balances it would start from.
    pub fn check(
        &self,
        from: AccountId,
        to: AccountId,
        amount: Usdc,
    ) -> Result<(i64, i64), LedgerError> {
        validate_transfer(from, to, amount, from.currency)?;
        let bounds = posting_bounds(from.kind, amount);
        let from_balance = self
            .balance(from)
            .ok_or(LedgerError::UnknownAccount(from))?;
        let to_balance = self.balance(to).ok_or(LedgerError::UnknownAccount(to))?;
        if from_balance < bounds.from_min_balance {
            return Err(LedgerError::InsufficientFunds(from));
        }
        if to_balance > bounds.to_max_balance {
            return Err(LedgerError::BalanceOverflow(to));
        }
        Ok((from_balance, to_balance))
    }

    /// Applies a transfer, or changes nothing and says why not.
    pub fn transfer(
        &mut self,
        from: AccountId,
        to: AccountId,
        amount: Usdc,
    ) -> Result<(), LedgerError> {
        let (from_balance, to_balance) = self.check(from, to, amount)?;
        let amount = amount.atomic_i64();
        // The bounds above guarantee neither subtraction nor addition overflows.
        self.balances
            .insert(from, from_balance.saturating_sub(amount));
        self.balances.insert(to, to_balance.saturating_add(amount));
        Ok(())
    }
}

/// One account as storage holds it: raw text, so a corrupted row is reported
/// rather than failing to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFact {
    /// The account id as stored.
    pub id: String,
    /// The kind as stored.
    pub kind: String,
    /// The currency as stored.
    pub currency: String,
    /// The stored balance.
    pub balance: i64,
}

/// The sum of transfers into or out of one account, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowFact {
    /// The account id the transfers name.
    pub account: String,
    /// The transfers' currency.
    pub currency: String,
    /// Total received.
    pub inflow: i128,
    /// Total sent.
    pub outflow: i128,
}

/// A broken ledger rule, named precisely enough to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The balances of one currency do not sum to zero: money appeared or vanished.
    #[error("balances of {currency} sum to {sum}, not 0")]
    CurrencyNotBalanced {
        /// The currency.
        currency: String,
        /// The sum of its balances.
        sum: i128,
    },
    /// An account that must not go negative is negative.
    #[error("account {account} has negative balance {balance}")]
    NegativeBalance {
        /// The account.
        account: String,
        /// Its balance.
        balance: i64,
    },
    /// A stored balance differs from the sum of the account's transfers.
    #[error("account {account} holds {stored} but its transfers add up to {computed}")]
    BalanceMismatch {
        /// The account.
        account: String,
        /// The stored balance.
        stored: i64,
        /// Received minus sent, from the transfers.
        computed: i128,
    },
    /// A transfer names an account that does not exist.
    #[error("transfers reference unknown account {account}")]
    DanglingTransfer {
        /// The missing account.
        account: String,
    },
    /// A transfer's currency differs from its account's.
    #[error("account {account} ({account_currency}) has transfers in {transfer_currency}")]
    CurrencyMismatch {
        /// The account.
        account: String,
        /// The account's currency.
        account_currency: String,
        /// The transfers' currency.
        transfer_currency: String,
    },
    /// A stored account row does not parse, or its kind or currency disagree with its id.
    #[error("account row {account} is malformed")]
    MalformedAccount {
        /// The raw id.
        account: String,
    },
}

/// What [`check_invariants`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerReport {
    /// Accounts examined.
    pub accounts: usize,
    /// Every rule that does not hold; empty for a sound ledger.
    pub violations: Vec<Violation>,
}

impl LedgerReport {
    /// True when every invariant holds.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks a whole ledger: per-currency sums are zero, no account is below its
/// floor, every stored balance equals its transfers, and every transfer names an
/// existing account of its own currency.
pub fn check_invariants(accounts: &[AccountFact], flows: &[FlowFact]) -> LedgerReport {
    let mut violations = Vec::new();
    let mut sums: BTreeMap<&str, i128> = BTreeMap::new();
    let mut known: BTreeMap<&str, &AccountFact> = BTreeMap::new();
    for account in accounts {
        let sum = sums.entry(account.currency.as_str()).or_insert(0);
        *sum = sum.saturating_add(i128::from(account.balance));
        known.insert(account.id.as_str(), account);
        match account.id.parse::<AccountId>() {
            Ok(id)
                if id.kind.as_str() == account.kind && id.currency.code() == account.currency =>
            {
                if account.balance < balance_floor(id.kind) {
                    violations.push(Violation::NegativeBalance {
                        account: account.id.clone(),
                        balance: account.balance,
                    });
                }
            }
            _ => violations.push(Violation::MalformedAccount {
                account: account.id.clone(),
            }),
        }
    }
    for (currency, sum) in sums {
        if sum != 0 {
            violations.push(Violation::CurrencyNotBalanced {
                currency: currency.to_owned(),
                sum,
            });
        }
    }
    violations.extend(check_flows(&known, flows));
    LedgerReport {
        accounts: accounts.len(),
        violations,
    }
}

fn check_flows(known: &BTreeMap<&str, &AccountFact>, flows: &[FlowFact]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut computed: BTreeMap<&str, i128> = BTreeMap::new();
    let mut dangling = BTreeSet::new();
    for flow in flows {
        let Some(account) = known.get(flow.account.as_str()) else {
            dangling.insert(flow.account.clone());
            continue;
        };
        if account.currency != flow.currency {
            violations.push(Violation::CurrencyMismatch {
                account: flow.account.clone(),
                account_currency: account.currency.clone(),
                transfer_currency: flow.currency.clone(),
            });
        }
        let net = computed.entry(flow.account.as_str()).or_insert(0);
        *net = net.saturating_add(flow.inflow).saturating_sub(flow.outflow);
    }
    violations.extend(
        dangling
            .into_iter()
            .map(|account| Violation::DanglingTransfer { account }),
    );
    for (id, account) in known {
        let net = computed.get(id).copied().unwrap_or(0);
        if net != i128::from(account.balance) {
            violations.push(Violation::BalanceMismatch {
                account: (*id).to_owned(),
                stored: account.balance,
                computed: net,
            });
        }
    }
    violations
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use purser_types::WalletId;

    fn usdc(atomic: u64) -> Usdc {
        Usdc::from_atomic(atomic).unwrap()
    }

    fn onramp() -> AccountId {
        AccountId::system(AccountKind::SandboxOnramp, Currency::Usdc)
    }

    fn wallet(n: u8) -> AccountId {
        AccountId::available(WalletId::from_bytes([n; 16]), Currency::Usdc)
    }

    fn facts(ledger: &MemoryLedger) -> Vec<AccountFact> {
        ledger
            .balances()
            .map(|(id, balance)| AccountFact {
                id: id.to_string(),
                kind: id.kind.as_str().to_owned(),
                currency: id.currency.code().to_owned(),
                balance,
            })
            .collect()
    }

    #[test]
    fn wallets_cannot_go_negative_but_sources_can() {
        let mut ledger = MemoryLedger::default();
        ledger.open(onramp());
        ledger.open(wallet(1));
        ledger.open(wallet(2));
        assert_eq!(
            ledger.transfer(wallet(1), wallet(2), usdc(1)),
            Err(LedgerError::InsufficientFunds(wallet(1)))
        );
        ledger.transfer(onramp(), wallet(1), usdc(10)).unwrap();
        assert_eq!(ledger.balance(onramp()), Some(-10));
        assert_eq!(
            ledger.transfer(wallet(1), wallet(2), usdc(11)),
            Err(LedgerError::InsufficientFunds(wallet(1)))
        );
        ledger.transfer(wallet(1), wallet(2), usdc(10)).unwrap();
        assert_eq!(ledger.balance(wallet(1)), Some(0));
        assert_eq!(
            ledger.transfer(wallet(1), wallet(1), usdc(1)),
            Err(LedgerError::SameAccount)
        );
        assert_eq!(
            ledger.transfer(onramp(), wallet(1), Usdc::ZERO),
            Err(LedgerError::ZeroAmount)
        );
        assert_eq!(
            ledger.transfer(onramp(), wallet(3), usdc(1)),
            Err(LedgerError::UnknownAccount(wallet(3)))
        );
    }

    #[test]
    fn balances_never_overflow() {
        let mut ledger = MemoryLedger::default();
        ledger.open(onramp());
        ledger.open(wallet(1));
        ledger.transfer(onramp(), wallet(1), Usdc::MAX).unwrap();
        // The source is at its floor: it cannot issue past the representable range.
        assert_eq!(
            ledger.transfer(onramp(), wallet(1), usdc(1)),
            Err(LedgerError::InsufficientFunds(onramp()))
        );
        assert_eq!(ledger.balance(onramp()), Some(-i64::MAX));
        assert_eq!(ledger.balance(wallet(1)), Some(i64::MAX));
    }

    #[test]
    fn posting_bounds_are_exact_at_the_extremes() {
        let max = posting_bounds(AccountKind::SandboxOnramp, Usdc::MAX);
        assert_eq!(
            max,
            PostingBounds {
                from_min_balance: 0,
                to_max_balance: 0
            }
        );
        let one = posting_bounds(AccountKind::Available, usdc(1));
        assert_eq!(
            one,
            PostingBounds {
                from_min_balance: 1,
                to_max_balance: i64::MAX - 1
            }
        );
        let source = posting_bounds(AccountKind::SandboxOnramp, usdc(1));
        assert_eq!(source.from_min_balance, -i64::MAX + 1);
    }

    #[test]
    fn detects_each_kind_of_damage() {
        let mut ledger = MemoryLedger::default();
        ledger.open(onramp());
        ledger.open(wallet(1));
        ledger.transfer(onramp(), wallet(1), usdc(5)).unwrap();
        let flows = vec![
            FlowFact {
                account: onramp().to_string(),
                currency: "USDC".into(),
                inflow: 0,
                outflow: 5,
            },
            FlowFact {
                account: wallet(1).to_string(),
                currency: "USDC".into(),
                inflow: 5,
                outflow: 0,
            },
        ];
        assert!(check_invariants(&facts(&ledger), &flows).is_ok());

        let wallet_row = |rows: &[AccountFact]| {
            rows.iter()
                .position(|r| r.id == wallet(1).to_string())
                .unwrap()
        };
        let mut edited = facts(&ledger);
        let w = wallet_row(&edited);
        edited[w].balance = 6;
        let report = check_invariants(&edited, &flows);
        assert!(
            report
                .violations
                .iter()
                .any(|v| matches!(v, Violation::CurrencyNotBalanced { sum: 1, .. }))
        );
        assert!(
            report
                .violations
                .iter()
                .any(|v| matches!(v, Violation::BalanceMismatch { stored: 6, .. }))
        );

        let mut negative = facts(&ledger);
        negative[1 - w].balance = 5;
        negative[w].balance = -5;
        let report = check_invariants(&negative, &flows);
        assert!(
            report
                .violations
                .iter()
                .any(|v| matches!(v, Violation::NegativeBalance { balance: -5, .. }))
        );

        let mut stray = flows.clone();
        stray.push(FlowFact {
            account: wallet(9).to_string(),
            currency: "USDC".into(),
            inflow: 1,
            outflow: 0,
        });
        let report = check_invariants(&facts(&ledger), &stray);
        assert!(
            report
                .violations
                .iter()
                .any(|v| matches!(v, Violation::DanglingTransfer { .. }))
        );
    }

    #[derive(Debug, Clone)]
    struct Step {
        from: usize,
        to: usize,
        amount: u64,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            (0usize..5, 0usize..5, 0u64..2_000).prop_map(|(from, to, amount)| Step {
                from,
                to,
                amount,
            }),
            0..200,
        )
    }

    proptest! {
        #[test]
        fn random_transfers_keep_every_invariant(steps in steps()) {
            let accounts = [onramp(), wallet(1), wallet(2), wallet(3), wallet(4)];
            let mut ledger = MemoryLedger::default();
            accounts.iter().for_each(|a| ledger.open(*a));
            let mut flows: BTreeMap<AccountId, (i128, i128)> = BTreeMap::new();
            for step in steps {
                let (from, to) = (accounts[step.from], accounts[step.to]);
                if ledger.transfer(from, to, usdc(step.amount)).is_ok() {
                    flows.entry(from).or_default().1 += i128::from(step.amount);
                    flows.entry(to).or_default().0 += i128::from(step.amount);
                }
                for (id, balance) in ledger.balances() {
                    prop_assert!(balance >= balance_floor(id.kind));
                }
            }
            let flows: Vec<FlowFact> = flows
                .into_iter()
                .map(|(id, (inflow, outflow))| FlowFact { account: id.to_string(), currency: "USDC".into(), inflow, outflow })
                .collect();
            let report = check_invariants(&facts(&ledger), &flows);
            prop_assert!(report.is_ok(), "{:?}", report.violations);
        }
    }
}
