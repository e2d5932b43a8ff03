//! Account walks: the lifecycle, restriction and closure, guards, e-mail validation.

use super::{Account, Channel, Command as C, Email};
use crate::args::{ArgError, ArgProblem, Args, CommandSpec};
use crate::graph::explore;
use crate::limits::EMAIL_LEN_MAX;
use crate::testing::{T0_MS, assert_round_trip, transcript};
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{Governor, StateSpec};

fn create() -> C {
    C::CreateAccount { email: Email::parse("ada@example.com").unwrap() }
}

fn args(pairs: &[(&str, &str)]) -> Args {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn lifecycle_from_sign_up_to_closure() {
    let mut a = Account::default();
    let steps = [
        (0, create()),
        (1, C::VerifyAccount { channel: Channel::Phone }),
        (2, C::ActivateAccount),
        (3, C::SuspendAccount),
        (4, C::ActivateAccount),
        (5, C::RestrictAccount),
        (6, C::LiftRestriction),
        (7, C::SuspendAccount),
        (8, C::RestrictAccount),
        (9, C::CloseAccount),
    ];
    assert_eq!(
        transcript(&mut a, &steps),
        "new --create_account--> new
new --verify_account--> verified
verified --activate_account--> active
active --suspend_account--> suspended
suspended --activate_account--> active
active --restrict_account--> restricted
restricted --lift_restriction--> active
active --suspend_account--> suspended
suspended --restrict_account--> restricted
restricted --close_account--> closed
"
    );
    assert_eq!(a.email().map(Email::as_str), Some("ada@example.com"));
    assert_eq!(a.created_at(), Some(Timestamp(T0_MS)));
    assert_eq!(a.verified_via(), Some(Channel::Phone));
    assert_eq!(a.verified_at(), Some(Timestamp(T0_MS + DAY_MS)));
    assert_eq!(a.closed_at(), Some(Timestamp(T0_MS + 9 * DAY_MS)));
    assert!(a.state().is_terminal());
}

#[test]
fn a_customer_may_leave_from_every_live_state() {
    let setups: [&[C]; 5] = [
        &[],
        &[create(), C::VerifyAccount { channel: Channel::Email }],
        &[create(), C::VerifyAccount { channel: Channel::Email }, C::ActivateAccount],
        &[
            create(),
            C::VerifyAccount { channel: Channel::Email },
            C::ActivateAccount,
            C::SuspendAccount,
        ],
        &[
            create(),
            C::VerifyAccount { channel: Channel::Email },
            C::ActivateAccount,
            C::RestrictAccount,
        ],
    ];
    let mut left = Vec::new();
    for setup in setups {
        let mut a = Account::default();
        for c in setup {
            a.apply(c, &Ctx::at_ms(T0_MS)).unwrap();
        }
        left.push(transcript(&mut a, &[(1, C::CloseAccount)]));
    }
    assert_eq!(
        left.concat(),
        "new --close_account--> closed
verified --close_account--> closed
active --close_account--> closed
suspended --close_account--> closed
restricted --close_account--> closed
"
    );
}

#[test]
fn closed_is_terminal() {
    let mut a = Account::default();
    a.apply(&C::CloseAccount, &Ctx::at_ms(T0_MS)).unwrap();
    let out = transcript(&mut a, &[(1, C::ActivateAccount), (1, C::CloseAccount), (1, create())]);
    assert_eq!(
        out,
        "closed --activate_account--> rejected invalid_transition: activate_account is not allowed in state closed of the account governor
closed --close_account--> rejected invalid_transition: close_account is not allowed in state closed of the account governor
closed --create_account--> rejected invalid_transition: create_account is not allowed in state closed of the account governor
"
    );
}

#[test]
fn an_account_is_created_once() {
    let mut a = Account::default();
    let other = C::CreateAccount { email: Email::parse("grace@example.org").unwrap() };
    let out = transcript(&mut a, &[(0, create()), (1, other)]);
    assert_eq!(
        out,
        "new --create_account--> new
new --create_account--> rejected precondition_failed: create_account refused: the account already exists
"
    );
    assert_eq!(a.email().map(Email::as_str), Some("ada@example.com"));
    assert_eq!(a.created_at(), Some(Timestamp(T0_MS)));
}

#[test]
fn verification_needs_an_account() {
    let mut a = Account::default();
    let out = transcript(&mut a, &[(0, C::VerifyAccount { channel: Channel::Email })]);
    assert_eq!(
        out,
        "new --verify_account--> rejected precondition_failed: verify_account refused: create_account must come first\n"
    );
    assert_eq!(a, Account::default());
}

#[test]
fn commands_out_of_order_are_invalid_transitions() {
    let mut a = Account::default();
    let out = transcript(
        &mut a,
        &[
            (0, C::ActivateAccount),
            (0, create()),
            (0, C::VerifyAccount { channel: Channel::Email }),
            (0, C::LiftRestriction),
            (0, C::SuspendAccount),
        ],
    );
    assert_eq!(
        out,
        "new --activate_account--> rejected invalid_transition: activate_account is not allowed in state new of the account governor
new --create_account--> new
new --verify_account--> verified
verified --lift_restriction--> rejected invalid_transition: lift_restriction is not allowed in state verified of the account governor
verified --suspend_account--> rejected invalid_transition: suspend_account is not allowed in state verified of the account governor
"
    );
}

#[test]
fn no_state_arms_a_timeout() {
    for (state, machine, _) in explore::<Account>().representatives {
        assert_eq!(machine.state_timeout(), None, "{state}");
    }
}

#[test]
fn e_mail_addresses_are_validated_at_parse() {
    let malformed = ArgProblem::Malformed { expected: "an e-mail address such as ada@example.com" };
    for ok in ["ada@example.com", "a@b.co", "first.last+tag@mail.example.org"] {
        assert_eq!(Email::parse(ok).map(|e| e.as_str().to_owned()), Ok(ok.to_owned()));
    }
    for bad in [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@@example.com",
        "ada@b@example.com",
        "ada@example",
        "ada@.example.com",
        "ada@example.com.",
        "ada@example..com",
        "ada lovelace@example.com",
        "ada@example.com ",
        "ada@exa\tmple.com",
        "ada\u{7}@example.com",
    ] {
        assert_eq!(Email::parse(bad), Err(malformed.clone()), "{bad:?}");
    }
    let local_max = format!("{}@example.com", "a".repeat(64));
    assert!(Email::parse(&local_max).is_ok());
    let local_long = format!("{}@example.com", "a".repeat(65));
    assert_eq!(Email::parse(&local_long), Err(malformed));
    let longest = format!("ada@{}.com", "d".repeat(EMAIL_LEN_MAX - 8));
    assert_eq!(longest.len(), EMAIL_LEN_MAX);
    assert!(Email::parse(&longest).is_ok());
    let too_long = format!("ada@{}.com", "d".repeat(EMAIL_LEN_MAX - 7));
    assert_eq!(Email::parse(&too_long), Err(ArgProblem::TooLong { max: EMAIL_LEN_MAX }));

    let err = C::parse("create_account", &args(&[("email", "ada@example")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "create_account: argument `email` = \"ada@example\": expected an e-mail address such as ada@example.com"
    );
    let err = C::parse("create_account", &args(&[("email", &too_long)])).unwrap_err();
    assert_eq!(
        err,
        ArgError::new("create_account", "email", None, ArgProblem::TooLong { max: EMAIL_LEN_MAX })
    );
    assert_eq!(err.to_string(), "create_account: argument `email` longer than 254 bytes");
}

#[test]
fn parse_errors_name_the_argument() {
    assert_eq!(
        C::parse("create_account", &Args::new()).unwrap_err(),
        ArgError::new("create_account", "email", None, ArgProblem::Missing)
    );
    assert_eq!(
        C::parse("verify_account", &args(&[("channel", "pigeon")])).unwrap_err().to_string(),
        "verify_account: argument `channel` = \"pigeon\": expected one of email, phone"
    );
    assert_eq!(
        C::parse("verify_account", &Args::new()).unwrap_err(),
        ArgError::new("verify_account", "channel", None, ArgProblem::Missing)
    );
    assert_eq!(
        C::parse("create_account", &args(&[("email", "ada@example.com"), ("name", "Ada")]))
            .unwrap_err(),
        ArgError::new("create_account", "name", None, ArgProblem::Unexpected)
    );
    assert_eq!(
        C::parse("close_account", &args(&[("reason", "moving")])).unwrap_err(),
        ArgError::new("close_account", "reason", None, ArgProblem::Unexpected)
    );
    assert_eq!(C::parse("delete_account", &Args::new()).unwrap_err().argument, "command");
    assert_eq!("phone".parse::<Channel>(), Ok(Channel::Phone));
    assert_eq!(Channel::Email.to_string(), "email");
}

#[test]
fn every_sample_round_trips_through_its_args() {
    let samples = C::samples(&Ctx::at_ms(T0_MS));
    for name in C::NAMES {
        assert!(samples.iter().any(|c| c.name() == *name), "no sample for {name}");
    }
    for c in &samples {
        assert_round_trip(c);
    }
    assert_round_trip(&C::VerifyAccount { channel: Channel::Phone });
    assert_round_trip(&C::CreateAccount {
        email: Email::parse("first.last+tag@mail.example.org").unwrap(),
    });
}
