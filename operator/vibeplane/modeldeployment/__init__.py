"""The ModelDeployment controller: how each model is served, priced and reached."""
