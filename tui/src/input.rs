//! Text entry: a [`TextField`] (plain, or masked for secrets: the buffer is reserved once and
//! zeroized when taken, cleared or dropped), and a [`Form`] of fields shown as a dialog.

use keyward_proto::Password;
use zeroize::{Zeroize, Zeroizing};

/// One line of text input with a byte limit. A masked field shows `*` and is only read out
/// with [`TextField::take_password`], which wipes it.
pub struct TextField {
    text: Zeroizing<String>,
    max: usize,
    masked: bool,
}

impl TextField {
    pub fn plain(max: usize) -> Self {
        Self {
            text: Zeroizing::new(String::new()),
            max,
            masked: false,
        }
    }
    /// A secret: the buffer is reserved at `max` bytes so typing never reallocates and
    /// leaves a copy behind.
    pub fn masked(max: usize) -> Self {
        Self {
            text: Zeroizing::new(String::with_capacity(max)),
            max,
            masked: true,
        }
    }
    pub fn is_masked(&self) -> bool {
        self.masked
    }
    /// The text of a plain field; a masked field reads as empty (use `take_password`).
    pub fn value(&self) -> &str {
        if self.masked { "" } else { &self.text }
    }
    pub fn chars(&self) -> usize {
        self.text.chars().count()
    }
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
    /// What the screen shows: the text, or one `*` per character.
    pub fn shown(&self) -> String {
        if self.masked {
            "*".repeat(self.chars())
        } else {
            self.text.to_string()
        }
    }
    pub fn capacity(&self) -> usize {
        self.text.capacity()
    }
    pub fn push(&mut self, c: char) {
        if self.text.len() + c.len_utf8() <= self.max {
            self.text.push(c);
        }
    }
    pub fn pop(&mut self) {
        self.text.pop();
    }
    pub fn clear(&mut self) {
        self.text.zeroize();
    }
    /// Moves the text into a [`Password`] and wipes the field's copy.
    pub fn take_password(&mut self) -> Password {
        let password = Password::new(self.text.as_str());
        self.text.zeroize();
        password
    }
}

/// A field of a [`Form`].
pub enum FieldKind {
    Text(TextField),
    /// One of a fixed set of words; ←/→ or Space change it, a letter picks the first match.
    Choice {
        options: &'static [&'static str],
        index: usize,
    },
    /// A checkbox; Space or ←/→ toggle it.
    Check(bool),
}

pub struct FormField {
    pub label: &'static str,
    pub kind: FieldKind,
}

impl FormField {
    pub fn text(label: &'static str, max: usize) -> Self {
        Self {
            label,
            kind: FieldKind::Text(TextField::plain(max)),
        }
    }
    pub fn secret(label: &'static str, max: usize) -> Self {
        Self {
            label,
            kind: FieldKind::Text(TextField::masked(max)),
        }
    }
    pub fn choice(label: &'static str, options: &'static [&'static str]) -> Self {
        Self {
            label,
            kind: FieldKind::Choice { options, index: 0 },
        }
    }
    pub fn check(label: &'static str, checked: bool) -> Self {
        Self {
            label,
            kind: FieldKind::Check(checked),
        }
    }
    /// What the screen shows for this field.
    pub fn shown(&self) -> String {
        match &self.kind {
            FieldKind::Check(true) => "[x]".into(),
            FieldKind::Check(false) => "[ ]".into(),
            FieldKind::Text(field) => field.shown(),
            FieldKind::Choice { options, index } => options
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    if i == *index {
                        format!("[{o}]")
                    } else {
                        format!(" {o} ")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// What a form is for: decides the request it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    UserAdd,
    CredentialImport,
    CredentialAdd,
    KeySync,
}

/// A dialog of fields: Tab/↑↓ move, Enter goes to the next field and submits on the last,
/// Esc cancels (secrets are wiped as the form is dropped).
pub struct Form {
    pub title: String,
    pub fields: Vec<FormField>,
    pub focus: usize,
    /// A line under the fields: what submitting does.
    pub hint: String,
    pub kind: FormKind,
    /// What the form acts on (the key a sync names), when not one of its fields.
    pub target: String,
}

impl Form {
    pub fn new(kind: FormKind, title: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            fields: Vec::new(),
            focus: 0,
            hint: hint.into(),
            kind,
            target: String::new(),
        }
    }
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }
    pub fn field(mut self, field: FormField) -> Self {
        self.fields.push(field);
        self
    }
    fn focused(&mut self) -> Option<&mut FieldKind> {
        self.fields.get_mut(self.focus).map(|f| &mut f.kind)
    }
    pub fn input(&mut self, c: char) {
        match self.focused() {
            Some(FieldKind::Text(field)) => field.push(c),
            Some(FieldKind::Choice { options, index }) => {
                if c == ' ' {
                    *index = (*index + 1) % options.len().max(1);
                } else if let Some(i) = options.iter().position(|o| {
                    o.chars()
                        .next()
                        .is_some_and(|first| first.eq_ignore_ascii_case(&c))
                }) {
                    *index = i;
                }
            }
            Some(FieldKind::Check(checked)) if c == ' ' => *checked = !*checked,
            Some(FieldKind::Check(_)) | None => {}
        }
    }
    pub fn backspace(&mut self) {
        if let Some(FieldKind::Text(field)) = self.focused() {
            field.pop();
        }
    }
    pub fn clear(&mut self) {
        if let Some(FieldKind::Text(field)) = self.focused() {
            field.clear();
        }
    }
    /// ← and →: change a choice; nothing in a text field.
    pub fn cycle(&mut self, forward: bool) {
        match self.focused() {
            Some(FieldKind::Choice { options, index }) => {
                let n = options.len().max(1);
                *index = if forward {
                    (*index + 1) % n
                } else {
                    (*index + n - 1) % n
                };
            }
            Some(FieldKind::Check(checked)) => *checked = !*checked,
            _ => {}
        }
    }
    /// Whether checkbox `i` is checked.
    pub fn checked(&self, i: usize) -> bool {
        matches!(
            self.fields.get(i).map(|f| &f.kind),
            Some(FieldKind::Check(true))
        )
    }
    pub fn next(&mut self) {
        self.focus = (self.focus + 1) % self.fields.len().max(1);
    }
    pub fn prev(&mut self) {
        let n = self.fields.len().max(1);
        self.focus = (self.focus + n - 1) % n;
    }
    pub fn on_last(&self) -> bool {
        self.focus + 1 >= self.fields.len()
    }
    /// The trimmed text of plain field `i` (a choice gives its word).
    pub fn value(&self, i: usize) -> String {
        match self.fields.get(i).map(|f| &f.kind) {
            Some(FieldKind::Text(field)) => field.value().trim().to_string(),
            Some(FieldKind::Choice { options, index }) => {
                options.get(*index).copied().unwrap_or("").to_string()
            }
            Some(FieldKind::Check(checked)) => if *checked { "yes" } else { "no" }.to_string(),
            None => String::new(),
        }
    }
    /// The first empty field, to send the cursor there instead of submitting.
    pub fn first_empty(&self) -> Option<usize> {
        self.fields.iter().position(|f| match &f.kind {
            FieldKind::Text(field) if field.is_masked() => field.is_empty(),
            FieldKind::Text(field) => field.value().trim().is_empty(),
            FieldKind::Choice { .. } | FieldKind::Check(_) => false,
        })
    }
    /// Moves secret field `i` into a [`Password`], wiping the form's copy.
    pub fn take_password(&mut self, i: usize) -> Password {
        match self.fields.get_mut(i).map(|f| &mut f.kind) {
            Some(FieldKind::Text(field)) => field.take_password(),
            _ => Password::new(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_field_shows_stars_keeps_its_buffer_and_wipes_when_taken() {
        let mut field = TextField::masked(16);
        let capacity = field.capacity();
        for c in "wJalrXUtnFEMI/K7MDENG".chars() {
            field.push(c);
        }
        assert_eq!(field.chars(), 16, "stops at the limit");
        assert_eq!(field.capacity(), capacity, "never reallocates");
        assert_eq!(field.shown(), "*".repeat(16));
        assert_eq!(field.value(), "", "a secret is not read as text");
        assert_eq!(field.take_password().expose(), "wJalrXUtnFEMI/K7");
        assert!(field.is_empty());
    }

    #[test]
    fn a_form_moves_between_fields_and_cycles_choices() {
        let mut form = Form::new(FormKind::UserAdd, "Add a user", "")
            .field(FormField::text("Name", 8))
            .field(FormField::choice("Role", &["administrator", "auditor"]));
        for c in "carol".chars() {
            form.input(c);
        }
        assert_eq!(form.first_empty(), None);
        form.next();
        assert!(form.on_last());
        form.input('a'); // picks the first option starting with a: administrator
        assert_eq!(form.value(1), "administrator");
        form.cycle(true);
        assert_eq!(form.value(1), "auditor");
        form.input(' ');
        assert_eq!(form.value(1), "administrator");
        form.next();
        assert_eq!(form.focus, 0, "Tab wraps");
        form.clear();
        assert_eq!(form.first_empty(), Some(0));
        assert_eq!(form.fields[1].shown(), "[administrator]  auditor ");
    }

    #[test]
    fn checkboxes_toggle_with_space_and_arrows() {
        let mut form = Form::new(FormKind::KeySync, "Synchronise", "")
            .target("3f1a")
            .field(FormField::check("Delete", false))
            .field(FormField::check("Update", true));
        assert_eq!(form.target, "3f1a");
        assert!(!form.checked(0) && form.checked(1));
        form.input(' ');
        assert!(form.checked(0));
        form.input('x');
        assert!(form.checked(0), "only Space toggles");
        form.next();
        form.cycle(false);
        assert!(!form.checked(1));
        assert_eq!(form.fields[0].shown(), "[x]");
        assert_eq!(form.fields[1].shown(), "[ ]");
        assert_eq!(form.first_empty(), None);
    }
}
