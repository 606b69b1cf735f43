//! `Guardian`: each test starts a real program (this binary again, with
//! `ATEXIT_GUARDIAN_SCENARIO` naming what it does), lets it declare its
//! cleanup, ends it — SIGKILL, SIGSEGV, `abort`, or cleanly — and checks
//! what the guardian did: the temp directory gone or kept, the child
//! process group dead or alive, the guardian itself gone.
//!
//! One binary without libtest; run plainly it runs every test (or those
//! whose name contains an argument).

#[path = "../common/mod.rs"]
mod common;
mod programs;
mod terminal;

const MARKER: &str = "ATEXIT_GUARDIAN_SCENARIO";
const CHILD_ALARM_SECS: u32 = 30;

type Test = (&'static str, fn());

const TESTS: &[Test] = &[
    (
        "sigkill_removes_the_dir_and_kills_the_group",
        programs::sigkill,
    ),
    (
        "started_among_busy_threads_it_still_acts",
        programs::started_among_threads,
    ),
    ("sigsegv_is_cleaned_up_too", programs::sigsegv),
    ("abort_is_cleaned_up_too", programs::abort),
    (
        "a_clean_exit_does_nothing_and_the_guardian_goes",
        programs::clean_exit,
    ),
    (
        "a_handled_sigterm_is_a_clean_ending",
        programs::handled_sigterm,
    ),
    ("a_cancelled_action_is_not_done", programs::cancelled),
    (
        "a_declared_command_runs_after_sigkill",
        programs::command_runs,
    ),
    (
        "a_forked_child_does_not_keep_the_program_alive",
        programs::forked_child,
    ),
    (
        "the_guardian_holds_no_descriptor_of_the_program",
        programs::holds_nothing,
    ),
    (
        "bad_input_is_refused_and_changes_nothing",
        programs::bad_input,
    ),
    ("start_twice_gives_the_same_guardian", programs::start_twice),
    (
        "raw_terminal_restored_after_sigkill",
        terminal::restored_after_sigkill,
    ),
    ("200_kills_in_a_row_none_missed", programs::kills_in_a_row),
    ("example_guardian_tempdir", programs::example_tempdir),
];

fn main() -> Result<(), String> {
    if let Ok(name) = std::env::var(MARKER) {
        return common::play(&name, programs::SCENARIOS.to_vec(), CHILD_ALARM_SECS);
    }
    common::run_tests_in_turn(TESTS)
}
