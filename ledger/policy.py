"""The refund policy's clauses that refund decisions cite (F1), quoted word for word from
docs/policies/refund-policy.txt (seed 001).

A denied refund names the clause that applies, so support can read the customer the policy
the operator published. Quotes keep the seed's own spelling and spacing (two sentences there
are separated by a no-break space, kept as \u00a0).
"""

CLAUSES: dict[str, str] = {
    "prepaid_plans": "iPlum plans are prepaid non-refundable. You may cancel or downgrade your "
    "account at any time, and the cancellation or downgrade will take effect at the end of the "
    "billing cycle. There are no refunds or credits for partial months or years.",
    "one_time_and_recurring": "There are no refunds for one-time or recurring charges. These "
    "includes usage credits, feature plans, port fees etc.",
    "aup_blocks": "If your account has been blocked or cancelled due to iPlum Acceptable usage "
    "policy, there are no refunds.",
    "port_out": "There is a mandatory one-time port out fees which you pay in the iPlum portal "
    "which gets paid to the underlying carrier. The future billing would stop after the number "
    "has been port out complete. \u00a0There is no partial refunds for the remaining period.",
    "port_in_failure": "If for any reason your number can't be ported you can keep using the "
    "new iPlum number assigned during port process. \u00a0There are no refunds.",
    "surcharges": "Carriers may add surcharges for various telecommunication services from "
    "time to time, iPlum may pass that cost to the clients. There are no proration or refunds "
    "in this situation for the remaining term.",
    "tcr_registration": "There are no refunds for carrier TCR registrations or cancellations "
    "due to not completing TCR registrations or inability to do TCR registrations.",
    "service_changes": "Any such changes will not be a reason for refunds.",
    "cancel_or_downgrade": "Should you elect to cancel or downgrade your account, please note "
    "that you will not be issued a refund for the most recently (or any previously) charged "
    "monthly or one-time fees. These includes usage credits, monthly/annual subscription plans, "
    "feature plans, port fees etc.",
    "store_purchases": "If you wish to cancel your account or change your plan, you may do so "
    "via the mode you purchased your plan: iPlum portal, Apple App Store or Google Play.",
}

# The clause a denied refund of each kind of charge cites.
CLAUSE_FOR_KIND: dict[str, str] = {
    "plan_fee": "prepaid_plans",
    "package_fee": "one_time_and_recurring",
    "payg_call": "one_time_and_recurring",
    "payg_data": "one_time_and_recurring",
    "roaming_data": "one_time_and_recurring",
    "port_out_fee": "port_out",
    "carrier_surcharge": "surcharges",
    "tcr_registration_fee": "tcr_registration",
    "adjustment": "one_time_and_recurring",
    "refund_credit": "one_time_and_recurring",
}
