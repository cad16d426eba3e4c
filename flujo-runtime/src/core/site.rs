//! Static descriptions of instrumented call sites: one per `#[pipeline_step]` function,
//! `#[track_cost]` function, pipeline root and the `tracing` bridge.

use std::any::Any;
use std::fmt;
use std::sync::OnceLock;

/// What a call site records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteKind {
    /// A `#[pipeline_step]` function.
    Step,
    /// A `#[track_cost]` model call.
    ModelCall,
    /// The root span of a pipeline run.
    Pipeline,
    /// A `tracing` span bridged into flujo's traces.
    Bridged,
}

/// What a `#[pipeline_step]` stands for in the GenAI conventions (`kind = "..."`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepRole {
    /// A step of the application's own (the default).
    Step,
    /// A tool the model or an agent calls: an `execute_tool {name}` span.
    Tool,
    /// An agent run in this process: an `invoke_agent {name}` span.
    Agent,
}

/// Static description of an instrumented function, one per call site, living in a `static`
/// next to the function.
pub struct CallSite {
    /// Step name (`name = "..."`, or the function's name); the operation for a model call;
    /// `invoke_workflow {pipeline}` for a pipeline root.
    pub name: &'static str,
    /// The function's own name; the pipeline's name for a pipeline root.
    pub function: &'static str,
    /// The function's fully qualified name, `module::path::function` (`code.function.name`),
    /// made at compile time; empty for a bridged span.
    pub qualified: &'static str,
    /// What the call site records.
    pub kind: SiteKind,
    /// What a step stands for ([`StepRole::Step`] for every other kind of site).
    pub role: StepRole,
    /// The span's name: `name`, or `execute_tool {name}` / `invoke_agent {name}`.
    pub span_name: &'static str,
    /// Filled once by the layer that derives metrics from this site's records (its metric
    /// handles), so that the worker finds them from the record without a lookup.
    cache: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl CallSite {
    /// Describes a call site.
    pub const fn new(
        name: &'static str,
        function: &'static str,
        qualified: &'static str,
        kind: SiteKind,
    ) -> CallSite {
        CallSite::step_with_role(name, function, qualified, kind, StepRole::Step, name)
    }

    /// Describes a call site whose step has a role (and a span name that says it).
    pub const fn step_with_role(
        name: &'static str,
        function: &'static str,
        qualified: &'static str,
        kind: SiteKind,
        role: StepRole,
        span_name: &'static str,
    ) -> CallSite {
        CallSite {
            name,
            function,
            qualified,
            kind,
            role,
            span_name,
            cache: OnceLock::new(),
        }
    }

    /// The value cached for this site, made by `init` on first use. `None` only if a value
    /// of another type was cached first (one layer owns the cache, so never in practice).
    pub fn cached<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Option<&T> {
        self.cache
            .get_or_init(|| Box::new(init()))
            .downcast_ref::<T>()
    }
}

impl fmt::Debug for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSite")
            .field("name", &self.name)
            .field("function", &self.function)
            .field("qualified", &self.qualified)
            .field("kind", &self.kind)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Call sites are statics: two are the same site when they are the same static.
impl PartialEq for CallSite {
    fn eq(&self, other: &CallSite) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for CallSite {}
