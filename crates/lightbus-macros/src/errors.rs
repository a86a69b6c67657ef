//! Collecting several compile errors, so that one expansion reports every problem at once.

/// A list of errors that becomes one [`syn::Error`] (rustc shows each part separately).
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
    count: usize,
}

impl Errors {
    /// Adds an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// How many errors were pushed so far.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// `Ok` if no error was pushed, otherwise all of them.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
