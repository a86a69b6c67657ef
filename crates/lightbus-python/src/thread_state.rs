//! One Python thread state per engine thread, kept from its first handler to its exit.
//!
//! `Python::attach` on a thread CPython has never seen creates a thread state, and deletes
//! it again when the thread detaches. The worker's engine threads call every Python handler
//! that way, so each call paid for a fresh state: on CPython 3.11 that includes mapping the
//! state's frame stack and unmapping it afterwards, and an unmap in a multi-threaded process
//! interrupts the other CPUs to flush their TLBs. Profiled on the 2-vCPU VM (2026-12-05,
//! `perf record` of a Python-front worker serving sequential calls from a Python-front
//! caller): `mmap`, `munmap`, their page faults and the frame-stack set-up were 12-15% of
//! the worker's CPU, about 20 us per call.
//!
//! So the first attach on an engine thread creates a state and keeps it (the thread then
//! detaches as usual, leaving the GIL free); later attaches only take the GIL. When the
//! thread exits (the runtime's idle blocking threads do after a while), its state is
//! deleted with it, unless the interpreter is shutting down.
//!
//! Only engine threads keep a state: a thread Python started owns its state and deletes it
//! itself when it ends.

use std::cell::{Cell, RefCell};

use pyo3::ffi;

/// The state kept for this thread, and the `PyGILState_Ensure` result that created it.
struct Kept {
    state: *mut ffi::PyThreadState,
    gil: ffi::PyGILState_STATE,
}

impl Drop for Kept {
    fn drop(&mut self) {
        // During the interpreter's shutdown (or after it) the state goes with the process;
        // taking the GIL then could end this thread in the middle of Rust code.
        // SAFETY: `Py_IsInitialized` may be called at any time.
        if crate::runtime::exiting() || unsafe { ffi::Py_IsInitialized() } == 0 {
            return;
        }
        // SAFETY: `state` is this thread's own state, detached (every attach on this thread
        // has ended: the thread is exiting); restoring it takes the GIL. The release then
        // brings the state's count from 1 to 0, which clears and deletes the state and
        // releases the GIL.
        unsafe {
            ffi::PyEval_RestoreThread(self.state);
            ffi::PyGILState_Release(self.gil);
        }
    }
}

thread_local! {
    static ENGINE_THREAD: Cell<bool> = const { Cell::new(false) };
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

/// Marks the calling thread as one of the engine's (the runtime's `on_thread_start`).
pub(crate) fn mark_engine_thread() {
    ENGINE_THREAD.with(|engine| engine.set(true));
}

/// Gives the calling engine thread a Python state that outlives its attaches, if it has none
/// yet. Call it right before attaching, with the interpreter initialized and not shutting
/// down. Does nothing on other threads.
pub(crate) fn keep() {
    if !ENGINE_THREAD.with(Cell::get) {
        return;
    }
    // `try_with`: a thread already destroying its thread-locals keeps nothing.
    let _ = KEPT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.is_some() {
            return;
        }
        // SAFETY: the interpreter is initialized (the caller's promise), and this engine
        // thread is not attached: engine threads attach only through `runtime::attach`,
        // which calls this first, and the first call finds no state. `PyGILState_Ensure`
        // creates the thread's state and takes the GIL; `PyEval_SaveThread` releases the GIL
        // and detaches, leaving the state registered for this thread with a count of 1, so
        // later attaches reuse it.
        let (gil, state) = unsafe {
            let gil = ffi::PyGILState_Ensure();
            (gil, ffi::PyEval_SaveThread())
        };
        *kept = Some(Kept { state, gil });
    });
}
