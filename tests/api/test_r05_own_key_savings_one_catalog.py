"""Own-key savings over a range in which no catalog change starts (the usual case): the rows
are read with one catalog version (its grouping once failed on both databases with "GROUP BY
term out of range" there, and the dashboard asks for exactly this)."""

from tests.api.test_r40_catalog_changes import year

HISTORY = """query($g: [UsageDimension!]!) {
  usageHistory(from: "2110-01-01T00:00:00Z", to: "2110-01-02T00:00:00Z", groupBy: $g) {
    day results dataCredits ownKeyResults ownKeySavings } }"""


async def test_r05_own_key_savings_in_a_range_of_one_catalog_version(api):
    with year(2110):
        # given: 90 emails found with the customer's own key (0.5 each), 10 paid for
        t = await api.create_workspace("launch")
        wb = await api.create_workbook(t.admin_key)
        email = {"kind": "ENRICHMENT", "provider": "hunter", "dataType": "email"}
        own = await api.record_usage(t.admin_key, wb, **email, ownApiKey=True, results=90)
        paid = await api.record_usage(t.admin_key, wb, **email, results=10)
        assert own["__typename"] == paid["__typename"] == "Charge", (own, paid)

        # when
        by_day = (await api.gql(HISTORY, {"g": ["DAY"]}, key=t.admin_key))["usageHistory"]
        [total] = (await api.gql(HISTORY, {"g": []}, key=t.admin_key))["usageHistory"]

        # then
        assert by_day == [
            {"day": "2110-01-01", "results": 100, "dataCredits": "5", "ownKeyResults": 90,
             "ownKeySavings": "45"},
        ]  # fmt: skip
        assert (total["ownKeyResults"], total["ownKeySavings"]) == (90, "45")
