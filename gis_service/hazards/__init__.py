"""The 隐患 ledger workflow (单四制: 交办, 台账, 销号, 通报) and its monthly statistics."""
