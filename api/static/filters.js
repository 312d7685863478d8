// The run list's search and filters: what they ask the API for, and the same test applied to
// runs the live feed brings in, so the list shows only what a reload would show.

// The filters as the API's query parameters, empty ones left out.
export function readFilters(form) {
  const fields = form.elements;
  const where = {
    ref_id_prefix: fields.search.value.trim(),
    definition: fields.definition.value,
    state: fields.state.value,
    lifecycle: fields.lifecycle.value,
  };
  return Object.fromEntries(Object.entries(where).filter(([, value]) => value));
}

// The API's test: `state` is the top-level business state, `lifecycle` the lifecycle leaf state.
export function matches(run, where) {
  return (!where.definition || run.definition === where.definition)
    && (!where.state || run.state === where.state)
    && (!where.lifecycle || run.lifecycle === where.lifecycle)
    && (!where.ref_id_prefix || (run.ref_id ?? "").startsWith(where.ref_id_prefix));
}

// [id, name] of the states a run of `definitions` can be listed under, each once: top-level
// states only, since a nested state (a review region's) is never a run's `state`.
export function stateChoices(definitions) {
  const choices = new Map();
  for (const definition of definitions) {
    for (const s of definition.states) {
      if (s.parent === null && !choices.has(s.id)) choices.set(s.id, s.name);
    }
  }
  return [...choices];
}

// [id, name] of the lifecycle states a run can be in: the leaves (a run is never just "active").
export function lifecycleChoices(lifecycle) {
  const parents = new Set(lifecycle.states.map((s) => s.parent));
  return lifecycle.states.filter((s) => !parents.has(s.id)).map((s) => [s.id, s.name]);
}

// What the empty list says, depending on whether filters hide runs and who is looking.
export function emptyText(where, mayCreate) {
  if (Object.keys(where).length) return "No runs match these filters.";
  return mayCreate
    ? "No runs yet: create one with the form above."
    : "No runs yet: they appear here as soon as an operator creates one.";
}
