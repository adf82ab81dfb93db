//! Issue 14, items 3, 4 and 9, as an attacker at a serial line and an administrator at the
//! console see them: failed logins cannot lock every administrator out, a burst of guesses gets
//! no more passwords checked than the threat model says, a name that is no account answers (and
//! takes as long) as an account does, and `user list` counts the failures that locked an account.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step is a failed test"
)]

/// `auth.max_failed_logins` by default: the passwords checked per name, per front end, per
/// `auth.lockout` (docs/threat-model.md, "Failed logins").
const CHECKED_PER_WINDOW: usize = 5;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use keyward_proto::{Request, Response, Role};
use keyward_tests::{ADMINS, Console, Daemon, Fixture, SerialLine};

const ALICE: (&str, &str) = ADMINS[0];
const BOB: (&str, &str) = ADMINS[1];

/// One test of this file at a time: one compares timings, and the others' password checks
/// (a burst of them among them) would be its noise.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running appliance with one serial line (and extra config); the guard keeps the other
/// tests of this file waiting.
fn appliance(
    extra: &str,
) -> (
    std::sync::MutexGuard<'static, ()>,
    Fixture,
    Daemon,
    SerialLine,
) {
    let turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fx = Fixture::new();
    fx.init_ok();
    let line = fx.serial_line("rack-a");
    if !extra.is_empty() {
        fx.append_config(extra);
    }
    let daemon = fx.start();
    line.expect("keyward> ", Duration::from_secs(30));
    (turn, fx, daemon, line)
}

/// Whether a login answer says the password was checked (and was wrong): the front ends print
/// `login failed: …` for that, and `account NAME is locked …` for an attempt refused unchecked.
fn checked(answer: &str) -> bool {
    answer.contains("login failed: unknown user or wrong password")
}

/// `user list` as JSON objects, by name.
fn users(console: &mut Console) -> serde_json::Map<String, serde_json::Value> {
    console
        .ok(&Request::UserList)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap().to_owned(), u.clone()))
        .collect()
}

/// The failed-login audit records of `target` whose reason is `reason`.
fn failures(console: &mut Console, target: &str, reason: &str) -> usize {
    console
        .audit_records()
        .iter()
        .filter(|r| {
            r["action"] == "auth.login"
                && r["outcome"] == "failure"
                && r["target"] == target
                && r["details"]["reason"] == reason
        })
        .count()
}

#[test]
fn an_attacker_at_a_serial_line_cannot_lock_the_administrators_out_of_the_console() {
    let (_turn, _fx, daemon, line) = appliance("");
    // The attack: five wrong passwords each for both administrators, over the serial port.
    for name in [ALICE.0, BOB.0] {
        for attempt in 1..=CHECKED_PER_WINDOW {
            let answer = line.login(name, "not-the-password");
            assert!(checked(&answer), "attempt {attempt} for {name}: {answer}");
        }
        let locked = line.login(name, "not-the-password");
        assert!(
            locked.contains(&format!("ERR locked account {name} is locked until")),
            "{locked}"
        );
    }
    // It holds where it was earned: the right password is refused on the serial port.
    let right = line.login(ALICE.0, ALICE.1);
    assert!(
        right.contains("ERR locked account alice is locked until"),
        "{right}"
    );

    // The administrators still log in at the console and act under dual control.
    let mut console = Console::connect(&daemon.socket);
    for (name, password) in [ALICE, BOB] {
        let login = console.login(name, password);
        assert!(login.ok, "{name} logs in on the console: {login:?}");
    }
    let added = console.request(&Request::UserAdd {
        name: "carol".into(),
        role: Role::Auditor,
    });
    assert!(added.ok, "a two-administrator operation runs: {added:?}");

    // And they can lift the serial lock under dual control.
    for name in [ALICE.0, BOB.0] {
        console.ok(&Request::UserUnlock { name: name.into() });
    }
    let again = line.login(ALICE.0, ALICE.1);
    assert!(
        again.contains("OK"),
        "alice logs in on the serial port after the unlock: {again}"
    );
}

/// `count` logins of `user` at once, each on its own console connection.
fn simultaneous_logins(daemon: &Daemon, count: usize, user: &str, password: &str) -> Vec<Response> {
    let start = Arc::new(Barrier::new(count));
    let logins: Vec<_> = (0..count)
        .map(|_| {
            let (socket, start) = (daemon.socket.clone(), start.clone());
            let (user, password) = (user.to_owned(), password.to_owned());
            std::thread::spawn(move || {
                let mut c = Console::connect(&socket);
                start.wait();
                c.login(&user, &password)
            })
        })
        .collect();
    logins.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn a_burst_of_guesses_gets_no_more_passwords_checked_than_documented() {
    let (_turn, _fx, daemon, line) = appliance("");
    // One after the other on the serial line.
    let answers: Vec<String> = (0..3 * CHECKED_PER_WINDOW)
        .map(|_| line.login(ALICE.0, "not-the-password"))
        .collect();
    let evaluated = answers.iter().filter(|a| checked(a)).count();
    assert_eq!(evaluated, CHECKED_PER_WINDOW, "{answers:#?}");
    assert!(
        answers[CHECKED_PER_WINDOW..]
            .iter()
            .all(|a| a.contains("ERR locked account alice is locked until")),
        "{answers:#?}"
    );

    // All at once, each on its own console connection: the ones in flight count too.
    let attempts = 3 * CHECKED_PER_WINDOW;
    let answers = simultaneous_logins(&daemon, attempts, BOB.0, "not-the-password");
    let messages: Vec<String> = answers
        .iter()
        .map(|r| {
            assert!(!r.ok, "{r:?}");
            r.error.as_ref().unwrap().message.clone()
        })
        .collect();
    let evaluated = messages.iter().filter(|m| checked(m)).count();
    assert!(
        evaluated <= CHECKED_PER_WINDOW,
        "{evaluated} of {attempts} simultaneous guesses were checked: {messages:#?}"
    );

    // Right passwords in a burst all get in (alice: her lock is on the serial ports).
    for login in simultaneous_logins(&daemon, attempts, ALICE.0, ALICE.1) {
        assert!(login.ok, "{login:?}");
    }

    // The trail agrees: no more passwords were checked than answered so. (Alice reads it at
    // the console: her lock is on the serial ports.)
    let mut console = Console::connect(&daemon.socket);
    assert!(console.login(ALICE.0, ALICE.1).ok);
    let serial_checked = failures(&mut console, "alice", "wrong password");
    assert_eq!(serial_checked, CHECKED_PER_WINDOW);
    let console_checked = failures(&mut console, "bob", "wrong password");
    assert!(console_checked <= CHECKED_PER_WINDOW, "{console_checked}");
}

/// An answer with the name and any time in it replaced, so that two names' answers compare.
fn normalised(answer: &str, name: &str) -> String {
    answer
        .replace(name, "NAME")
        .split(' ')
        .map(|word| {
            let bare = word.trim_end_matches([',', ';', ')', '.']);
            if humantime::parse_rfc3339(bare).is_ok() {
                word.replace(bare, "TIME")
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The median of signed gaps (ns).
fn median_gap(gaps: &[i128]) -> i128 {
    let mut sorted = gaps.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// One login over the console: its answer (normalised) and how long it took.
fn timed_login(console: &mut Console, name: &str) -> (String, Duration) {
    let started = Instant::now();
    let r = console.login(name, "not-the-password-at-all");
    let took = started.elapsed();
    let e = r.error.expect("a wrong password fails");
    (
        format!("{:?}: {}", e.code, normalised(&e.message, name)),
        took,
    )
}

/// The same sequence of wrong passwords for `real` (an account) and `unknown` (none), pairs
/// taken one after the other in alternating order so that drift on a busy machine favours
/// neither: each name's answers, and the times of the checked passwords.
struct Sample {
    answers: [Vec<String>; 2],
    times: [Vec<Duration>; 2],
}

fn sample(console: &mut Console, real: &str, unknown: &str, max: usize) -> Sample {
    let mut s = Sample {
        answers: [Vec::new(), Vec::new()],
        times: [Vec::new(), Vec::new()],
    };
    for round in 0..max + 2 {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (answer, took) = timed_login(console, [real, unknown][side]);
            s.answers[side].push(answer);
            if round < max {
                s.times[side].push(took);
            }
        }
    }
    s
}

#[test]
fn a_name_that_is_no_account_answers_and_takes_as_long_as_an_account() {
    // More failures before the lock, for more timing samples of a checked password.
    let max = 10;
    let (_turn, _fx, daemon, line) = appliance(&format!("[auth]\nmax_failed_logins = {max}\n"));
    let mut admins = daemon.admins();
    for name in ["carol", "dave"] {
        admins.ok(&Request::UserAdd {
            name: name.into(),
            role: Role::Auditor,
        });
    }
    drop(admins);
    // A set of samples per account and a name not seen before. The machine is shared with
    // other builds, whose load moves every time by tens of milliseconds: the two times of one
    // pair (taken one after the other) see the same load, so the gap is measured per pair,
    // and its median must be within 10% of the median time. Up to three sets are pooled while
    // it is not.
    let mut console = Console::connect(&daemon.socket);
    let unknown_names = ["mallory", "trent", "oscar"];
    let (mut times, mut gaps) = ([Vec::new(), Vec::new()], Vec::new());
    let mut sets = 0;
    let within = |gaps: &[i128], times: &[Vec<Duration>; 2]| {
        let all: Vec<Duration> = times.concat();
        median_gap(gaps).unsigned_abs() * 10 <= median(all).as_nanos()
    };
    for (real, unknown) in ["alice", "carol", "dave"].into_iter().zip(unknown_names) {
        let s = sample(&mut console, real, unknown, max);
        assert_eq!(
            s.answers[0], s.answers[1],
            "the same sequence gets the same answers for {real} (an account) and {unknown} (none)"
        );
        assert!(
            s.answers[0].last().unwrap().starts_with("Locked: "),
            "{:#?}",
            s.answers[0]
        );
        let [r, u] = s.times;
        gaps.extend(
            r.iter()
                .zip(&u)
                .map(|(a, b)| a.as_nanos() as i128 - b.as_nanos() as i128),
        );
        times[0].extend(r);
        times[1].extend(u);
        sets += 1;
        if within(&gaps, &times) {
            break;
        }
    }
    let report = format!(
        "{} pairs: median time {:?} for an account, {:?} for a name that is none; median gap {:?} ms",
        gaps.len(),
        median(times[0].clone()),
        median(times[1].clone()),
        median_gap(&gaps) as f64 / 1e6
    );
    eprintln!("wrong password, {report}");
    assert!(within(&gaps, &times), "wrong password, {report}");

    // The serial port answers alike too (its own lock, its own count).
    let (real, unknown) = (ALICE.0, unknown_names[0]);
    let real_serial: Vec<String> = (0..=max)
        .map(|_| normalised(&line.login(real, "wrong-password-here"), real))
        .collect();
    let unknown_serial: Vec<String> = (0..=max)
        .map(|_| normalised(&line.login(unknown, "wrong-password-here"), unknown))
        .collect();
    assert_eq!(real_serial, unknown_serial);
    assert!(
        real_serial[max].contains("ERR locked account NAME is locked until"),
        "{real_serial:#?}"
    );
    // The trail still tells the administrators which was which, without the unknown names.
    console.login(BOB.0, BOB.1);
    assert_eq!(failures(&mut console, "alice", "wrong password"), 2 * max);
    let records = console.audit_records();
    for name in unknown_names {
        assert!(
            !records.iter().any(|r| r.to_string().contains(name)),
            "a name that is no account never enters the trail"
        );
    }
    assert_eq!(
        records
            .iter()
            .filter(|r| r["details"]["reason"] == "no such user")
            .count(),
        (sets + 1) * max
    );
}

#[test]
fn an_account_locked_by_an_administrator_tells_only_its_holder() {
    let (_turn, _fx, daemon, line) = appliance("");
    let mut admins = daemon.admins();
    let added = admins.ok(&Request::UserAdd {
        name: "carol".into(),
        role: Role::Auditor,
    });
    let otp = added["one_time_password"].as_str().unwrap().to_owned();
    admins.ok(&Request::UserLock {
        name: "carol".into(),
    });
    let wrong = normalised(&line.login("carol", "not-the-password"), "carol");
    let unknown = normalised(&line.login("mallory", "not-the-password"), "mallory");
    assert_eq!(wrong, unknown, "a wrong password says nothing of the lock");
    assert!(checked(&wrong), "{wrong}");
    let right = line.login("carol", &otp);
    assert!(
        right.contains("ERR locked account carol is locked by an administrator"),
        "the right password learns of it: {right}"
    );
}

#[test]
fn user_list_counts_the_failures_that_locked_an_account() {
    let (_turn, _fx, daemon, line) = appliance("");
    let mut console = daemon.admins();
    console.ok(&Request::UserAdd {
        name: "carol".into(),
        role: Role::Auditor,
    });
    for _ in 0..CHECKED_PER_WINDOW {
        line.login("carol", "not-the-password");
    }
    let carol = &users(&mut console)["carol"];
    assert_eq!(carol["failed_logins"], CHECKED_PER_WINDOW, "{carol}");
    assert!(
        carol["state"].as_str().unwrap().starts_with("locked until"),
        "{carol}"
    );
    console.ok(&Request::UserUnlock {
        name: "carol".into(),
    });
    let carol = &users(&mut console)["carol"];
    assert_eq!(carol["failed_logins"], 0, "{carol}");
    assert_eq!(carol["state"], "active", "{carol}");
}
