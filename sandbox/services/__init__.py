"""The lender at work: request pipeline, lifecycle engine, control operations, callback outbox."""
