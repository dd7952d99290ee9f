//! The page, its script and style, built into the binary: the view works on a plant
//! network with no internet.

pub const INDEX_HTML: &str = include_str!("assets/index.html");
pub const LOGIN_HTML: &str = include_str!("assets/login.html");
pub const APP_JS: &str = include_str!("assets/app.js");
pub const STYLE_CSS: &str = include_str!("assets/style.css");
/// Every text of the page, one catalogue per language (Chinese first).
pub const I18N_JS: &str = include_str!("assets/i18n.js");
/// uPlot 1.6.32 (MIT; see assets/vendor/uPlot.LICENSE): the trend charts.
pub const UPLOT_JS: &str = include_str!("assets/vendor/uPlot.iife.min.js");
pub const UPLOT_CSS: &str = include_str!("assets/vendor/uPlot.min.css");
