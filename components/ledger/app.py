"""ledger: balances by key; a step of a saga and its compensation.

{"init": {"key": n, ...}} sets balances; {"do": key, "amount": n} adds n (negative
takes) and is refused when the balance would go below zero; {"undo": key,
"amount": n} reverses a step that was done; {"get": key} answers the balance.
Every answer is {"key": k, "balance": b}. The balances are durable state: with a
journal they survive traps and restarts.
"""

from airssys.sdk import Message, Reject, durable, on_message

state = durable(balances={})


@on_message
def handle(message: Message) -> object:
    value = message.value
    if not isinstance(value, dict):
        raise Reject('expected {"do"|"undo"|"get"|"init": ...}')
    balances = state["balances"]
    if "init" in value:
        for key, amount in value["init"].items():
            balances[key] = _amount(amount)
        return {"balances": balances}
    key = value.get("do") or value.get("undo") or value.get("get")
    if not isinstance(key, str):
        raise Reject("the key must be a string")
    if "get" in value:
        return {"key": key, "balance": balances.get(key, 0)}
    amount = _amount(value.get("amount", 0))
    if "undo" in value:
        amount = -amount
    balance = balances.get(key, 0) + amount
    if balance < 0:
        raise Reject(f"{key}: {balances.get(key, 0)} left, {-amount} asked")
    balances[key] = balance
    return {"key": key, "balance": balance}


def _amount(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Reject(f"an amount is a whole number, got {value!r}")
    return value
