"""Program, jurisdiction and cost-sharing files: schema, loading, validation."""
