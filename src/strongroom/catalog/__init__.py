"""Self-service catalog: products, portfolios, provisioned products and the provisioning engine."""
