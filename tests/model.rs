//! Model-based property test of the registry: random sequences of
//! `register`, `register_with`, `Handle::unregister`, `unregister(f)`,
//! `run`, `clear`, `pending` and `is_registered`, with
//! handlers that themselves register, unregister, clear, count or run
//! during the run, checked step by step against a plain `Vec` model: the
//! same handlers run, in the same order, each once; the same counts; the
//! same failures.
//!
//! `registry_matches_model` drives an `atexit::Registry` (and ends with its
//! `Drop`); `global_registry_matches_model` drives the process-wide
//! functions and is the only test in this binary that touches them.

use std::cell::RefCell;
use std::panic::{self, panic_any};
use std::sync::{Arc, Once, Weak};

use atexit::{Handle, Registry, RunError};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// What a handler does when it runs, after recording that it ran.
#[derive(Clone, Debug)]
enum Act {
    Plain,
    /// Panics, with a `String` payload (`true`) or a non-string one.
    Panic(bool),
    /// Registers a new handler that will do the inner act.
    Register(Box<Act>),
    /// `Handle::unregister` on the handle with this index (modulo the
    /// number of handles so far).
    Unregister(usize),
    /// `unregister(f)` for function number `k` (see `unregister_fn`).
    UnregisterFn(usize),
    Clear,
    Pending,
    /// `run` from inside the run: returns `Ok` at once.
    NestedRun,
}

/// One step of a test case.
#[derive(Clone, Debug)]
enum Op {
    /// `register(closure)`.
    Register(Act),
    /// `register(G_k)`, a function item without parameters.
    RegisterFn(usize),
    /// `register_with(G_k, ())`.
    RegisterWithUnit(usize),
    /// `register_with(F_k, (ctx,))`.
    RegisterWith(usize, Act),
    Unregister(usize),
    UnregisterFn(usize),
    IsRegistered(usize),
    Run,
    Clear,
    Pending,
}

/// What the log records; the model predicts the same sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    /// A handler with this registration number ran.
    Ran(usize),
    /// The function item `G_k` ran.
    RanFn(usize),
    Unregistered(bool),
    UnregisteredFn(usize),
    Cleared,
    Pending(usize),
    NestedRun(bool),
    /// A handler wanted its registry, which is being dropped.
    Gone,
}

/// The panic payload of non-string panics, and the prefix of string ones:
/// the panic hook keeps both quiet.
struct ModelPanic;
const PANIC_PREFIX: &str = "model handler ";

// ---- the real side ----

/// Which registry a test case drives.
#[derive(Clone)]
enum Target {
    Local(Weak<Registry>),
    Global,
}

/// A usable registry: the local one upgraded, or the process-wide one.
enum Live {
    Local(Arc<Registry>),
    Global,
}

impl Live {
    #[track_caller]
    fn register(&self, f: impl FnOnce() + Send + 'static) -> Handle {
        match self {
            Live::Local(registry) => registry.register(f),
            Live::Global => atexit::register(f),
        }
    }

    #[track_caller]
    fn register_with<F: Send + 'static, A: atexit::Args<F>>(&self, func: F, args: A) -> Handle {
        match self {
            Live::Local(registry) => registry.register_with(func, args),
            Live::Global => atexit::register_with(func, args),
        }
    }

    fn unregister<F: 'static>(&self, func: F) -> usize {
        match self {
            Live::Local(registry) => registry.unregister(func),
            Live::Global => atexit::unregister(func),
        }
    }

    fn run(&self) -> Result<(), RunError> {
        match self {
            Live::Local(registry) => registry.run(),
            Live::Global => atexit::run_now(),
        }
    }

    fn pending(&self) -> usize {
        match self {
            Live::Local(registry) => registry.pending(),
            Live::Global => atexit::pending(),
        }
    }

    fn clear(&self) {
        match self {
            Live::Local(registry) => registry.clear(),
            Live::Global => atexit::clear(),
        }
    }
}

/// Per test thread: what handlers have done, every handle issued (its
/// index is the registration number), and the registry under test.
/// Handlers run on the thread that runs the registry, so a thread-local is
/// all they need, and parallel tests stay apart.
struct World {
    log: Vec<Event>,
    handles: Vec<Handle>,
    target: Option<Target>,
}

thread_local! {
    static WORLD: RefCell<World> = const {
        RefCell::new(World { log: Vec::new(), handles: Vec::new(), target: None })
    };
}

fn log(event: Event) {
    WORLD.with(|world| world.borrow_mut().log.push(event));
}

fn take_log() -> Vec<Event> {
    WORLD.with(|world| std::mem::take(&mut world.borrow_mut().log))
}

fn live() -> Option<Live> {
    let target = WORLD.with(|world| world.borrow().target.clone())?;
    match target {
        Target::Local(weak) => weak.upgrade().map(Live::Local),
        Target::Global => Some(Live::Global),
    }
}

fn handle_count() -> usize {
    WORLD.with(|world| world.borrow().handles.len())
}

fn handle(index: usize) -> Option<Handle> {
    WORLD.with(|world| {
        let world = world.borrow();
        (!world.handles.is_empty()).then(|| world.handles[index % world.handles.len()].clone())
    })
}

fn keep(handle: Handle) {
    WORLD.with(|world| world.borrow_mut().handles.push(handle));
}

/// The context `F_k` functions are registered with.
struct Ctx {
    id: usize,
    act: Act,
}

fn g0() {
    log(Event::RanFn(0));
}
fn g1() {
    log(Event::RanFn(1));
}
fn g2() {
    log(Event::RanFn(2));
}
fn g3() {
    log(Event::RanFn(3));
}
fn f0(ctx: Ctx) {
    perform(ctx.id, ctx.act);
}
fn f1(ctx: Ctx) {
    perform(ctx.id, ctx.act);
}
fn f2(ctx: Ctx) {
    perform(ctx.id, ctx.act);
}
fn f3(ctx: Ctx) {
    perform(ctx.id, ctx.act);
}

/// Functions 0..4 are `G_k`, 4..8 are `F_k`.
const FUNCTIONS: usize = 8;

fn unregister_fn(live: &Live, k: usize) -> usize {
    match k {
        0 => live.unregister(g0),
        1 => live.unregister(g1),
        2 => live.unregister(g2),
        3 => live.unregister(g3),
        4 => live.unregister(f0),
        5 => live.unregister(f1),
        6 => live.unregister(f2),
        _ => live.unregister(f3),
    }
}

fn register_g(live: &Live, k: usize, with_unit: bool) -> Handle {
    match (k, with_unit) {
        (0, false) => live.register(g0),
        (1, false) => live.register(g1),
        (2, false) => live.register(g2),
        (_, false) => live.register(g3),
        (0, true) => live.register_with(g0, ()),
        (1, true) => live.register_with(g1, ()),
        (2, true) => live.register_with(g2, ()),
        (_, true) => live.register_with(g3, ()),
    }
}

fn register_f(live: &Live, k: usize, ctx: Ctx) -> Handle {
    match k {
        0 => live.register_with(f0, (ctx,)),
        1 => live.register_with(f1, (ctx,)),
        2 => live.register_with(f2, (ctx,)),
        _ => live.register_with(f3, (ctx,)),
    }
}

fn handler(id: usize, act: Act) -> impl FnOnce() + Send + 'static {
    move || perform(id, act)
}

/// The body of every handler with a registration number.
fn perform(id: usize, act: Act) {
    log(Event::Ran(id));
    let needs_registry = |f: &dyn Fn(&Live) -> Event| match live() {
        Some(live) => log(f(&live)),
        None => log(Event::Gone),
    };
    match act {
        Act::Plain => {}
        Act::Panic(true) => panic!("{PANIC_PREFIX}{id}"),
        Act::Panic(false) => panic_any(ModelPanic),
        Act::Register(inner) => match live() {
            Some(live) => {
                let id = handle_count();
                keep(live.register(handler(id, *inner)));
            }
            None => log(Event::Gone),
        },
        Act::Unregister(index) => {
            let removed = handle(index).is_some_and(Handle::unregister);
            log(Event::Unregistered(removed));
        }
        Act::UnregisterFn(k) => {
            needs_registry(&|live| Event::UnregisteredFn(unregister_fn(live, k)))
        }
        Act::Clear => needs_registry(&|live| {
            live.clear();
            Event::Cleared
        }),
        Act::Pending => needs_registry(&|live| Event::Pending(live.pending())),
        Act::NestedRun => needs_registry(&|live| Event::NestedRun(live.run().is_ok())),
    }
}

// ---- the model ----

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Closure,
    G(usize),
    F(usize),
}

#[derive(Debug)]
struct Entry {
    id: usize,
    key: Key,
    act: Act,
}

/// The registry as a plain `Vec`, oldest first.
#[derive(Default)]
struct Model {
    pending: Vec<Entry>,
    /// Registrations so far: the next registration number.
    registered: usize,
    log: Vec<Event>,
    /// Set while the registry is being dropped.
    dropping: bool,
}

impl Model {
    fn register(&mut self, key: Key, act: Act) -> usize {
        let id = self.registered;
        self.registered += 1;
        self.pending.push(Entry { id, key, act });
        id
    }

    fn unregister(&mut self, index: usize) -> bool {
        if self.registered == 0 {
            return false;
        }
        let id = index % self.registered;
        match self.pending.iter().position(|entry| entry.id == id) {
            Some(position) => {
                self.pending.remove(position);
                true
            }
            None => false,
        }
    }

    fn unregister_fn(&mut self, k: usize) -> usize {
        let key = if k < 4 { Key::G(k) } else { Key::F(k - 4) };
        let before = self.pending.len();
        self.pending.retain(|entry| entry.key != key);
        before - self.pending.len()
    }

    fn is_registered(&self, id: usize) -> bool {
        self.pending.iter().any(|entry| entry.id == id)
    }

    /// Runs to empty, newest first; returns the failure messages in order.
    fn run(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        while let Some(entry) = self.pending.pop() {
            if let Key::G(k) = entry.key {
                self.log.push(Event::RanFn(k));
                continue;
            }
            self.log.push(Event::Ran(entry.id));
            self.perform(entry.id, entry.act, &mut failures);
        }
        failures
    }

    fn perform(&mut self, id: usize, act: Act, failures: &mut Vec<String>) {
        let event = match act {
            Act::Plain => return,
            Act::Panic(true) => {
                failures.push(format!("{PANIC_PREFIX}{id}"));
                return;
            }
            Act::Panic(false) => {
                failures.push("non-string panic payload".into());
                return;
            }
            Act::Unregister(index) => Event::Unregistered(self.unregister(index)),
            _ if self.dropping => Event::Gone,
            Act::Register(inner) => {
                self.register(Key::Closure, *inner);
                return;
            }
            Act::UnregisterFn(k) => Event::UnregisteredFn(self.unregister_fn(k)),
            Act::Clear => {
                self.pending.clear();
                Event::Cleared
            }
            Act::Pending => Event::Pending(self.pending.len()),
            Act::NestedRun => Event::NestedRun(true),
        };
        self.log.push(event);
    }

    /// Whether running now would make a handler panic (tried on a copy of
    /// the acts, without changing the model).
    fn run_would_panic(&self) -> bool {
        fn panics(act: &Act) -> bool {
            match act {
                Act::Panic(_) => true,
                Act::Register(inner) => panics(inner),
                _ => false,
            }
        }
        self.pending.iter().any(|entry| panics(&entry.act))
    }
}

// ---- driving both ----

fn failure_messages(result: Result<(), RunError>) -> Result<Vec<String>, TestCaseError> {
    let Err(err) = result else {
        return Ok(Vec::new());
    };
    for failure in err.failures() {
        prop_assert_eq!(failure.location().file(), file!());
        prop_assert_eq!(failure.name(), None);
    }
    Ok(err
        .failures()
        .iter()
        .map(|failure| failure.message().to_owned())
        .collect())
}

fn step(live: &Live, model: &mut Model, op: Op) -> Result<(), TestCaseError> {
    match op {
        Op::Register(act) => {
            let id = model.register(Key::Closure, act.clone());
            keep(live.register(handler(id, act)));
        }
        Op::RegisterFn(k) => {
            model.register(Key::G(k), Act::Plain);
            keep(register_g(live, k, false));
        }
        Op::RegisterWithUnit(k) => {
            model.register(Key::G(k), Act::Plain);
            keep(register_g(live, k, true));
        }
        Op::RegisterWith(k, act) => {
            let id = model.register(Key::F(k), act.clone());
            keep(register_f(live, k, Ctx { id, act }));
        }
        Op::Unregister(index) => {
            let real = handle(index).is_some_and(Handle::unregister);
            prop_assert_eq!(
                real,
                model.unregister(index),
                "Handle::unregister({})",
                index
            );
        }
        Op::UnregisterFn(k) => {
            prop_assert_eq!(
                unregister_fn(live, k),
                model.unregister_fn(k),
                "unregister(fn {})",
                k
            );
        }
        Op::IsRegistered(index) => {
            if let Some(real) = handle(index) {
                let id = index % model.registered;
                prop_assert_eq!(real.is_registered(), model.is_registered(id));
            }
        }
        Op::Run => {
            let real = failure_messages(live.run())?;
            let expected = model.run();
            prop_assert_eq!(real, expected, "run failures");
        }
        Op::Clear => {
            live.clear();
            model.pending.clear();
        }
        Op::Pending => prop_assert_eq!(live.pending(), model.pending.len()),
    }
    prop_assert_eq!(
        take_log(),
        std::mem::take(&mut model.log),
        "what handlers did"
    );
    prop_assert_eq!(live.pending(), model.pending.len(), "pending");
    // Every handle ever issued agrees with the model.
    for id in 0..handle_count() {
        let real = handle(id).expect("handle").is_registered();
        prop_assert_eq!(real, model.is_registered(id), "is_registered of #{}", id);
    }
    Ok(())
}

fn act() -> impl Strategy<Value = Act> {
    let leaf = prop_oneof![
        6 => Just(Act::Plain),
        1 => any::<bool>().prop_map(Act::Panic),
        3 => (0..64usize).prop_map(Act::Unregister),
        2 => (0..FUNCTIONS).prop_map(Act::UnregisterFn),
        1 => Just(Act::Clear),
        2 => Just(Act::Pending),
        1 => Just(Act::NestedRun),
    ];
    leaf.prop_recursive(3, 8, 1, |inner| {
        inner.prop_map(|act| Act::Register(Box::new(act)))
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => act().prop_map(Op::Register),
        3 => (0..4usize).prop_map(Op::RegisterFn),
        2 => (0..4usize).prop_map(Op::RegisterWithUnit),
        4 => (0..4usize, act()).prop_map(|(k, act)| Op::RegisterWith(k, act)),
        4 => (0..64usize).prop_map(Op::Unregister),
        2 => (0..FUNCTIONS).prop_map(Op::UnregisterFn),
        2 => (0..64usize).prop_map(Op::IsRegistered),
        3 => Just(Op::Run),
        1 => Just(Op::Clear),
        2 => Just(Op::Pending),
    ]
}

fn config() -> Config {
    Config {
        cases: if cfg!(miri) { 4 } else { 256 },
        // No regression files written into the source tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Keeps the test's own panics (its handlers') off stderr; any other
/// panic is shown as usual.
fn quiet_model_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let ours = payload.is::<ModelPanic>()
                || payload
                    .downcast_ref::<String>()
                    .is_some_and(|text| text.starts_with(PANIC_PREFIX));
            if !ours {
                default(info);
            }
        }));
    });
}

fn reset(target: Option<Target>) {
    WORLD.with(|world| {
        let mut world = world.borrow_mut();
        world.log.clear();
        world.handles.clear();
        world.target = target;
    });
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn registry_matches_model(ops in prop::collection::vec(op(), 0..40)) {
        quiet_model_panics();
        let registry = Arc::new(Registry::new());
        reset(Some(Target::Local(Arc::downgrade(&registry))));
        let live = Live::Local(Arc::clone(&registry));
        let mut model = Model::default();
        for op in ops {
            step(&live, &mut model, op)?;
        }
        drop(live);
        // The end: `Drop` runs what is left. A panic there would be
        // reported on stderr, so then `run` is used instead.
        if model.run_would_panic() {
            let real = failure_messages(registry.run())?;
            prop_assert_eq!(real, model.run());
            prop_assert_eq!(take_log(), std::mem::take(&mut model.log));
        }
        model.dropping = true;
        drop(registry);
        let failures = model.run();
        prop_assert!(failures.is_empty());
        prop_assert_eq!(take_log(), model.log, "what handlers did during Drop");
        reset(None);
    }

    // Calls into the C library (the exit hook), which Miri cannot run.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn global_registry_matches_model(ops in prop::collection::vec(op(), 0..40)) {
        quiet_model_panics();
        atexit::clear();
        reset(Some(Target::Global));
        let mut model = Model::default();
        for op in ops {
            step(&Live::Global, &mut model, op)?;
        }
        step(&Live::Global, &mut model, Op::Run)?;
        prop_assert_eq!(atexit::pending(), 0);
        reset(None);
    }
}
