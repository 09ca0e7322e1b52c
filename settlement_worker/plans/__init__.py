"""How an obligation is paid: payment plans under the payee's receipt limits (pure)."""
