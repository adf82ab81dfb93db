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
    /// Whether two fields hold the same text (a masked one never leaves the field for this).
    pub fn same_text(&self, other: &Self) -> bool {
        *self.text == *other.text
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
        options: Vec<String>,
        index: usize,
    },
    /// A checkbox; Space or ←/→ toggle it.
    Check(bool),
}

/// Checks a field's value as it is typed: `Err` is the reason shown beside it.
pub type Check = Box<dyn Fn(&str) -> Result<(), String>>;

pub struct FormField {
    pub label: &'static str,
    pub kind: FieldKind,
    /// The tab it sits on (a form without tabs has every field on 0).
    pub tab: usize,
    /// May be left empty.
    pub optional: bool,
    /// The format check, if any (client-side only: the daemon stays the authority).
    pub check: Option<Check>,
    /// A dim note shown beside the field when its value is valid.
    pub note: String,
    /// Enabled only while the checkbox at this index is checked.
    pub enabled_by: Option<usize>,
    /// The value it was opened with (an edit sends only what changed).
    pub initial: String,
    /// Must hold the same text as the field at this index (a new password typed twice).
    pub same_as: Option<usize>,
}

impl FormField {
    fn of(label: &'static str, kind: FieldKind) -> Self {
        Self {
            label,
            kind,
            tab: 0,
            optional: false,
            check: None,
            note: String::new(),
            enabled_by: None,
            initial: String::new(),
            same_as: None,
        }
    }
    pub fn text(label: &'static str, max: usize) -> Self {
        Self::of(label, FieldKind::Text(TextField::plain(max)))
    }
    pub fn secret(label: &'static str, max: usize) -> Self {
        Self::of(label, FieldKind::Text(TextField::masked(max)))
    }
    pub fn choice(label: &'static str, options: &[&str]) -> Self {
        Self::choices(label, options.iter().map(|o| o.to_string()).collect())
    }
    pub fn choices(label: &'static str, options: Vec<String>) -> Self {
        Self::of(label, FieldKind::Choice { options, index: 0 })
    }
    pub fn check(label: &'static str, checked: bool) -> Self {
        Self::of(label, FieldKind::Check(checked))
    }
    pub fn on_tab(mut self, tab: usize) -> Self {
        self.tab = tab;
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn checked_by(mut self, check: impl Fn(&str) -> Result<(), String> + 'static) -> Self {
        self.check = Some(Box::new(check));
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
    pub fn same_as(mut self, index: usize) -> Self {
        self.same_as = Some(index);
        self
    }
    pub fn enabled_by(mut self, index: usize) -> Self {
        self.enabled_by = Some(index);
        self
    }
    /// Fills a plain field, picks a choice (when it is one of the options) or sets a box;
    /// remembered as the value the form was opened with.
    pub fn filled(mut self, value: &str) -> Self {
        match &mut self.kind {
            FieldKind::Text(field) => {
                field.clear();
                value.chars().for_each(|c| field.push(c));
            }
            FieldKind::Choice { options, index } => {
                // A value not offered (yet) is kept as an option, so opening changes nothing.
                *index = match options.iter().position(|o| o == value) {
                    Some(i) => i,
                    None if value.is_empty() => *index,
                    None => {
                        options.push(value.to_string());
                        options.len() - 1
                    }
                };
            }
            FieldKind::Check(checked) => *checked = value == "yes",
        }
        self.initial = self.current();
        self
    }
    /// The value as the form reads it: trimmed text, the choice's word, yes or no.
    pub fn current(&self) -> String {
        match &self.kind {
            FieldKind::Text(field) => field.value().trim().to_string(),
            FieldKind::Choice { options, index } => {
                options.get(*index).cloned().unwrap_or_default()
            }
            FieldKind::Check(checked) => if *checked { "yes" } else { "no" }.to_string(),
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

/// Why a field's value is refused.
enum Refusal {
    /// It must repeat the field with this label, and does not.
    Differs(&'static str),
    /// Its check's reason.
    Checked(String),
}

/// What a form is for, named by the screen that opens it: that screen reads it back when the
/// form is filled in, and tells its forms apart by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormKind(pub &'static str);

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
    /// Tab names; empty for a form without tabs.
    pub tabs: Vec<&'static str>,
    pub tab: usize,
    /// The keyboard is on the tab line (←→ switch tabs there).
    pub on_tabs: bool,
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
            tabs: Vec::new(),
            tab: 0,
            on_tabs: false,
        }
    }
    pub fn tabs(mut self, tabs: &[&'static str]) -> Self {
        self.tabs = tabs.to_vec();
        self
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
        if self.on_tabs || !self.enabled(self.focus) {
            return None;
        }
        self.fields.get_mut(self.focus).map(|f| &mut f.kind)
    }
    /// Whether field `i` takes input (a field enabled by an unchecked box does not).
    pub fn enabled(&self, i: usize) -> bool {
        match self.fields.get(i).and_then(|f| f.enabled_by) {
            Some(by) => self.checked(by),
            None => true,
        }
    }
    /// The fields on the current tab, in order.
    pub fn on_tab(&self) -> Vec<usize> {
        (0..self.fields.len())
            .filter(|&i| self.fields[i].tab == self.tab)
            .collect()
    }
    /// Why field `i` is not valid as typed, if it is not.
    fn refusal(&self, i: usize) -> Option<Refusal> {
        let field = self.fields.get(i)?;
        if !self.enabled(i) {
            return None;
        }
        if let Some(other) = field.same_as.and_then(|j| self.fields.get(j)) {
            // Checked once something is typed here; an empty repeat is "fill in first".
            let same = match (&field.kind, &other.kind) {
                (FieldKind::Text(a), FieldKind::Text(b)) => a.is_empty() || a.same_text(b),
                _ => true,
            };
            if !same {
                return Some(Refusal::Differs(other.label));
            }
        }
        let value = field.current();
        if value.is_empty() && field.optional {
            return None;
        }
        field
            .check
            .as_ref()
            .and_then(|check| check(&value).err())
            .map(Refusal::Checked)
    }
    /// Why field `i` is not valid as typed, if it is not: the reason shown beside it.
    pub fn reason(&self, i: usize) -> Option<String> {
        Some(match self.refusal(i)? {
            Refusal::Differs(other) => format!("differs from {other}"),
            Refusal::Checked(reason) => reason,
        })
    }
    /// The first field (in tab order) whose value is refused, with why in a sentence that
    /// names the field ("New again differs from New password", "Alias: …").
    pub fn first_invalid(&self) -> Option<(usize, String)> {
        self.order().into_iter().find_map(|i| {
            let label = self.fields.get(i)?.label;
            Some(match self.refusal(i)? {
                Refusal::Differs(other) => (i, format!("{label} differs from {other}")),
                Refusal::Checked(reason) => (i, format!("{label}: {reason}")),
            })
        })
    }
    /// Field indices, tab by tab.
    fn order(&self) -> Vec<usize> {
        // A field on no tab (the name, when editing) is not visited.
        let tabs = self.tabs.len().max(1);
        let mut order: Vec<usize> = (0..self.fields.len())
            .filter(|&i| self.fields[i].tab < tabs)
            .collect();
        order.sort_by_key(|&i| self.fields[i].tab);
        order
    }
    /// Puts the keyboard on field `i`, switching to its tab.
    pub fn show(&mut self, i: usize) {
        if let Some(field) = self.fields.get(i) {
            self.tab = field.tab;
            self.focus = i;
            self.on_tabs = false;
        }
    }
    /// Tab / Shift-Tab in a tabbed form: the next or previous tab, on its first field.
    pub fn switch_tab(&mut self, forward: bool) {
        let n = self.tabs.len().max(1);
        self.tab = if forward {
            (self.tab + 1) % n
        } else {
            (self.tab + n - 1) % n
        };
        if !self.on_tabs {
            if let Some(&first) = self.on_tab().first() {
                self.focus = first;
            }
        }
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
    /// ← and →: change a choice or a box; on the tab line, switch tabs; nothing in a text
    /// field.
    pub fn cycle(&mut self, forward: bool) {
        if self.on_tabs {
            self.switch_tab(forward);
            return;
        }
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
    /// ↓ (and Tab in a form without tabs): the next field; in a tabbed form, from the tab
    /// line to the first field and from the last field back to the tab line.
    pub fn next(&mut self) {
        if self.tabs.is_empty() {
            self.focus = (self.focus + 1) % self.fields.len().max(1);
            return;
        }
        let fields = self.on_tab();
        let at = fields.iter().position(|&i| i == self.focus);
        match (self.on_tabs, at) {
            (false, Some(at)) if at + 1 < fields.len() => self.focus = fields[at + 1],
            (false, _) => self.on_tabs = true,
            (true, _) => {
                self.on_tabs = false;
                self.focus = fields.first().copied().unwrap_or(0);
            }
        }
    }
    pub fn prev(&mut self) {
        if self.tabs.is_empty() {
            let n = self.fields.len().max(1);
            self.focus = (self.focus + n - 1) % n;
            return;
        }
        let fields = self.on_tab();
        let at = fields.iter().position(|&i| i == self.focus);
        match (self.on_tabs, at) {
            (false, Some(at)) if at > 0 => self.focus = fields[at - 1],
            (false, _) => self.on_tabs = true,
            (true, _) => {
                self.on_tabs = false;
                self.focus = fields.last().copied().unwrap_or(0);
            }
        }
    }
    /// Enter submits here: the last field (of the last tab, in a tabbed form).
    pub fn on_last(&self) -> bool {
        if self.tabs.is_empty() {
            return self.focus + 1 >= self.fields.len();
        }
        !self.on_tabs && self.order().last() == Some(&self.focus)
    }
    /// Enter before the last field: the next field, then the next tab's first.
    pub fn advance(&mut self) {
        if self.tabs.is_empty() {
            self.next();
            return;
        }
        let order = self.order();
        let at = if self.on_tabs {
            self.on_tab()
                .first()
                .and_then(|f| order.iter().position(|i| i == f))
        } else {
            order.iter().position(|&i| i == self.focus).map(|p| p + 1)
        };
        if let Some(&i) = at.and_then(|p| order.get(p)) {
            self.show(i);
        }
    }
    /// The trimmed text of plain field `i` (a choice gives its word).
    pub fn value(&self, i: usize) -> String {
        self.fields
            .get(i)
            .map(FormField::current)
            .unwrap_or_default()
    }
    /// Whether field `i` differs from the value the form was opened with.
    pub fn changed(&self, i: usize) -> bool {
        self.fields.get(i).is_some_and(|f| f.current() != f.initial)
    }
    /// The first empty field that must be filled, to send the cursor there instead of
    /// submitting.
    pub fn first_empty(&self) -> Option<usize> {
        self.order().into_iter().find(|&i| {
            let f = &self.fields[i];
            !f.optional
                && self.enabled(i)
                && match &f.kind {
                    FieldKind::Text(field) if field.is_masked() => field.is_empty(),
                    FieldKind::Text(field) => field.value().trim().is_empty(),
                    FieldKind::Choice { .. } | FieldKind::Check(_) => false,
                }
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
        let mut form = Form::new(FormKind("user add"), "Add a user", "")
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
        let mut form = Form::new(FormKind("key sync"), "Synchronise", "")
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
