//! The profiles shipped in `firmware-config/profiles/`, built into the binary so an edge box
//! needs no extra files for the device models it knows.

include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));

/// The text of a shipped profile.
pub fn builtin_profile(model: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(name, _)| *name == model)
        .map(|(_, text)| *text)
}

/// Names of all shipped profiles.
pub fn builtin_profiles() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}
