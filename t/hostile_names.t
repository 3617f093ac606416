#!/usr/bin/perl
# Hostile option values -> 400 JSON errors before the body is stored;
# hostile original file names never reach a path and come back in
# Content-Disposition per RFC 6266 (no raw CR/LF, safe quoted fallback,
# filename* with UTF-8 percent-encoding).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Encode qw(decode encode);
use File::Find;
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;
use VconvMedia ();
use VconvHostile qw(slurp);

my $dir = tempdir('vconv-hn-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvMedia::make_media($dir, 'mp4', duration => 1, size => '160x120',
                                 name => 'clip.mp4');
my $ng = VconvNginx->new->start;
binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my %CODES_400 = map { $_ => 1 } qw(unknown_option unknown_format
    format_not_allowed not_a_number out_of_range invalid_value
    codec_not_allowed conflicting_options duplicate_option);

sub uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# --- options -----------------------------------------------------------------
my @bad = (
    ['format=../../x'                         => 'format path'],
    ['format=' . uri_escape('../../x')        => 'format path, escaped'],
    ['format=' . uri_escape('mp4/../../etc/x') => 'format with slash'],
    ['format=' . uri_escape("mp4\0")          => 'format with NUL'],
    ['format=' . uri_escape("mp4\r\nX: y")    => 'format with CRLF'],
    ['format=mp4&vcodec=' . uri_escape('libx264 -i /etc/passwd') => 'vcodec with args'],
    ['format=mp4&vcodec=' . uri_escape('libx264,-i,/etc/passwd') => 'vcodec list'],
    ['format=mp4&acodec=' . uri_escape('../aac')  => 'acodec path'],
    ['format=mp4&width=' . uri_escape("1,drawtext=text='x':textfile=/etc/passwd")
                                              => 'width with a filter'],
    ['format=mp4&width=1,drawtext=x'          => 'width with a filter, raw'],
    ['format=mp4&height=' . uri_escape('240[out];movie=/etc/passwd') => 'height with a graph'],
    ['format=mp4&fps=-3'                      => 'negative fps'],
    ['format=mp4&fps=0'                       => 'zero fps'],
    ['format=mp4&fps=1e999'                   => 'huge fps'],
    ['format=mp4&fps=nan'                     => 'NaN fps'],
    ['format=mp4&start=abc'                   => 'start=abc'],
    ['format=mp4&start=-1'                    => 'negative start'],
    ['format=mp4&duration=' . uri_escape('1;rm -rf /') => 'duration with a command'],
    ['format=mp4&width=99999999999999999999999' => 'width overflow'],
    ['format=mp4&width=-320'                  => 'negative width'],
    ['format=mp4&crf=' . uri_escape('23 -f lavfi') => 'crf with args'],
    ['format=mp4&video_bitrate=1e99'          => 'huge bitrate'],
    ['format=mp4&filter_complex=' . uri_escape('movie=/etc/passwd') => 'unknown option filter_complex'],
    ['format=mp4&i=' . uri_escape('/etc/passwd') => 'unknown option i'],
    ['format=mp4&format=webm'                 => 'duplicate format'],
    ['format=mp4&wait=' . uri_escape('1;x')   => 'wait=1;x'],
);
for my $b (@bad) {
    my ($q, $name) = @$b;
    my $r = $ng->post_file("/api/jobs?$q", $mp4, name => 'clip.mp4');
    my $code = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH'
             ? $r->{json}{error}{code} // '' : '';
    ok($r->{status} == 400 && $CODES_400{$code},
       "$name ($q) -> 400 [$code]")
        or diag("status $r->{status} body " . substr($r->{body}, 0, 300));
    unlike($r->{body}, qr/root:x:0:0/, "... no passwd bytes in the answer");
}
# the same through multipart fields
for my $f (['vcodec', 'libx264 -i /etc/passwd'], ['width', '1,drawtext=x'],
           ['fps', '-3'], ['start', 'abc'], ['format', '../../x'])
{
    my @fields = $f->[0] eq 'format' ? @$f : (format => 'mp4', @$f);
    my $r = $ng->post_multipart('/api/jobs', file => $mp4,
                                fields_before => \@fields);
    my $code = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH'
             ? $r->{json}{error}{code} // '' : '';
    ok($r->{status} == 400 && $CODES_400{$code},
       "multipart $f->[0]=$f->[1] -> 400 [$code]")
        or diag("status $r->{status} body " . substr($r->{body}, 0, 300));
}
my $e;
VconvNginx::poll(3, sub { $e = $ng->store_entries; !@$e });
is_deeply($e, [], 'refused options left nothing in the store');

# --- names -------------------------------------------------------------------
my $utf8 = "vid\x{e9}o \x{65e5}\x{672c}\x{8a9e} \x{1F3AC}";
my @names = (
    ['../../etc/passwd.mov',          'passwd'],
    ['..\\..\\windows\\system32\\x.mov', 'x'],
    ['/etc/cron.d/evil.mov',          'evil'],
    [qq{a"b'c\\d.mov},                undef],
    ["evil\r\nX-Injected: 1\r\n.mov", undef],
    ["semi;colon=1; filename=x.exe.mov", undef],
    ['A' x 1000 . '.mov',             undef],
    [encode('UTF-8', $utf8) . '.mov', $utf8],
    ["bad\xff\xfeutf8.mov",           undef],
    ["nul\0hidden.mov",               'nul'],
    ["\x{202e}"  =~ s/./encode('UTF-8', $&)/er . 'gpj.exe.mov', undef],
    ['../',                            undef],
    ['%2e%2e%2f%2e%2e%2fescaped.mov',  undef],
    ['.hidden.mov',                    'hidden'],
);

my @jobs;
for my $n (@names) {
    my ($raw, $stem) = @$n;
    # keep=1: the store is looked at below (a wait=1 job leaves nothing)
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1&keep=1', $mp4,
                           headers => ['X-File-Name: ' . uri_escape($raw)]);
    my $show = $raw =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ger;
    $show = substr($show, 0, 60) . '...' if length $show > 60;
    is($r->{status}, 200, "name '$show': converted") or next;
    my @cd = map { $_->[1] } grep { $_->[0] eq 'content-disposition' }
             @{ $r->{header_list} };
    is(scalar @cd, 1, '... one Content-Disposition');
    my $cd = $cd[0] // '';
    ok(!grep({ $_->[0] =~ /injected/i } @{ $r->{header_list} }),
       '... no injected header');
    unlike($cd, qr/[\x00-\x1f\x7f]/, '... no control bytes in the header');
    like($cd, qr/^attachment;\s*filename="([^"\\]*)";\s*filename\*=UTF-8''([A-Za-z0-9!#\$&+\-.^_`|~%]+)$/,
         '... attachment; filename="safe"; filename*=UTF-8\'\'pct-encoded')
        or diag("Content-Disposition: $cd");
    my ($fb, $star) = $cd =~ /filename="([^"]*)";\s*filename\*=UTF-8''(\S+)$/;
    $fb //= '';
    $star //= '';
    unlike($fb, qr{[/\\:;*?<>|%]}, "... fallback '$fb' has no path or odd characters");
    like($fb, qr/\.mp4$/, '... fallback ends with the new extension');
    my $bytes = $star =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ger;
    my $dec = eval { decode('UTF-8', $bytes, Encode::FB_CROAK) };
    ok(defined $dec, '... filename* decodes as UTF-8');
    $dec //= '';
    unlike($dec, qr{[/\\\x00-\x1f\x7f]}, '... filename* has no separators or controls');
    unlike($dec, qr/^\./, '... nor a leading dot');
    like($dec, qr/\.mp4$/, '... filename* ends with .mp4');
    cmp_ok(length($cd), '<', 2048, '... header length bounded (' . length($cd) . ')');
    is($dec, "$stem.mp4", "... filename* is '$stem.mp4'") if defined $stem;
    push @jobs, $r;
}

# --- the store: id-named folders only, no name on disk -----------------------
my @top = @{ $ng->store_entries };
ok(@top >= @names, 'jobs are in the store (' . scalar(@top) . ')');
my @odd = grep { !/^(?:[A-Za-z0-9_-]+-)?[0-9a-f]{32}$/ } @top;
is("@odd", '', 'every store entry is a job id');
my @paths;
find({ wanted => sub { push @paths, $File::Find::name }, no_chdir => 1 },
     $ng->prefix);
my @leaked = grep { m{passwd|Injected|evil|AAAAAAAA|windows|cron|hidden|semi|
                      \x{e9}|vid|colon|escaped}x && !m{/curl/} } @paths;
is("@leaked", '', 'no uploaded name appears in any path under the prefix');
# zip.idx: outputs.zip's CRCs (the names in it are the sanitised base)
my @inner = grep { m{^\Q${\ $ng->store}\E/[^/]+/(.+)$}
                   && $1 !~ /^(job\.json|zip\.idx|output(\.[\w.]+)?)$/ }
            @paths;
my @names_inner = map { m{/([^/]+)$} ? $1 : $_ } @inner;
is("@names_inner", '', 'job folders hold only job.json and output');

# job JSON still answers with the name, escaped
my $id = (grep { -d $ng->store . "/$_" } @top)[0] // 'none';
my $jr = $ng->get("/api/jobs/$id");
ok($jr->{json}, 'job JSON parses with a hostile name in it');

$ng->assert_clean_log;
$ng->stop;
done_testing;
