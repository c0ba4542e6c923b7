"""A custom tool as a job would configure it: a plain, typed Python function."""


def order_status(order_number: str) -> str:
    """Look up the delivery status of an order."""
    return f"Order {order_number} ships tomorrow." if order_number.isdigit() else "No such order."
