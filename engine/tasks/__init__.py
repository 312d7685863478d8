"""Human tasks: a run's open decisions, kept by the runtime beside the chart.

signoff.engine.model.tasks declares them; this package plans them for each transition, keeps
the inbox index, and says who is told.
"""
